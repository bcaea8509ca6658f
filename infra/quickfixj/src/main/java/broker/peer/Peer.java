package broker.peer;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import quickfix.Application;
import quickfix.ConfigError;
import quickfix.DefaultMessageFactory;
import quickfix.FieldNotFound;
import quickfix.FileLogFactory;
import quickfix.IncorrectTagValue;
import quickfix.Initiator;
import quickfix.MemoryStoreFactory;
import quickfix.Message;
import quickfix.MessageCracker;
import quickfix.Session;
import quickfix.SessionID;
import quickfix.SessionNotFound;
import quickfix.SessionSettings;
import quickfix.SocketInitiator;
import quickfix.UnsupportedMessageType;
import quickfix.field.ClOrdID;
import quickfix.field.CumQty;
import quickfix.field.ExecType;
import quickfix.field.LastPx;
import quickfix.field.LastQty;
import quickfix.field.LeavesQty;
import quickfix.field.MsgType;
import quickfix.field.OrdStatus;
import quickfix.field.OrdType;
import quickfix.field.OrderQty;
import quickfix.field.RefMsgType;
import quickfix.field.RefSeqNum;
import quickfix.field.RefTagID;
import quickfix.field.SessionRejectReason;
import quickfix.field.Side;
import quickfix.field.Symbol;
import quickfix.field.Text;
import quickfix.field.TransactTime;
import quickfix.fix44.ExecutionReport;
import quickfix.fix44.NewOrderSingle;

/**
 * A headless QuickFIX/J FIX 4.4 initiator: logs on, sends one MARKET NewOrderSingle, prints every
 * ExecutionReport as one parseable line, and exits 0 once the order is FILLED.
 *
 * <p>Exit codes: 0 filled; 2 bad arguments; 3 no logon in time; 4 not filled in time; 5 the order
 * was rejected or ended unfilled; 6 a session-level Reject was sent or received.
 *
 * <p>Output lines (stdout), one per event, {@code key=value} separated by spaces:
 * {@code LOGON}, {@code SENT cl_ord_id=...}, {@code REPORT exec_type=... ord_status=... last_qty=...
 * cum_qty=... leaves_qty=... last_px=...}, {@code SESSION_REJECT direction=in|out ...}, {@code DONE}.
 */
public final class Peer extends MessageCracker implements Application {

    private static final char ORD_STATUS_FILLED = OrdStatus.FILLED;

    private final String clOrdId = UUID.randomUUID().toString();
    private final CountDownLatch loggedOn = new CountDownLatch(1);
    private final CountDownLatch finished = new CountDownLatch(1);
    private final AtomicInteger sessionRejects = new AtomicInteger();
    private volatile boolean filled;
    private volatile SessionID sessionId;

    public static void main(String[] args) throws Exception {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(Options.USAGE);
            System.exit(2);
            return;
        }
        System.exit(new Peer().run(options));
    }

    private int run(Options options) throws ConfigError, SessionNotFound, InterruptedException {
        SessionSettings settings = new SessionSettings(
                new ByteArrayInputStream(options.config().getBytes(StandardCharsets.UTF_8)));
        Initiator initiator = new SocketInitiator(this, new MemoryStoreFactory(), settings,
                new FileLogFactory(settings), new DefaultMessageFactory());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(options.timeoutS);
        initiator.start();
        try {
            if (!loggedOn.await(remaining(deadline), TimeUnit.NANOSECONDS)) {
                System.err.println("error: no logon within " + options.timeoutS + " s");
                return 3;
            }
            line("LOGON session=" + sessionId);
            Session.sendToTarget(newOrder(options), sessionId);
            line("SENT cl_ord_id=" + clOrdId + " symbol=" + options.symbol + " qty=" + options.qty);
            if (!finished.await(remaining(deadline), TimeUnit.NANOSECONDS)) {
                System.err.println("error: the order was not filled within " + options.timeoutS + " s");
                return 4;
            }
        } finally {
            initiator.stop();
        }
        if (sessionRejects.get() > 0) {
            return 6;
        }
        line("DONE filled=" + filled);
        return filled ? 0 : 5;
    }

    private static long remaining(long deadline) {
        return Math.max(0L, deadline - System.nanoTime());
    }

    private NewOrderSingle newOrder(Options options) {
        NewOrderSingle order = new NewOrderSingle(new ClOrdID(clOrdId), new Side(Side.BUY),
                new TransactTime(), new OrdType(OrdType.MARKET));
        order.set(new Symbol(options.symbol));
        order.set(new OrderQty(options.qty));
        return order;
    }

    private static synchronized void line(String text) {
        System.out.println(text);
        System.out.flush();
    }

    // Application callbacks.

    @Override
    public void onCreate(SessionID id) {
        sessionId = id;
    }

    @Override
    public void onLogon(SessionID id) {
        loggedOn.countDown();
    }

    @Override
    public void onLogout(SessionID id) {
        line("LOGOUT session=" + id);
    }

    @Override
    public void toAdmin(Message message, SessionID id) {
        // QuickFIX/J itself sends a session-level Reject when a message fails its validation.
        noteReject("out", message);
    }

    @Override
    public void fromAdmin(Message message, SessionID id) {
        noteReject("in", message);
    }

    @Override
    public void toApp(Message message, SessionID id) {
    }

    @Override
    public void fromApp(Message message, SessionID id)
            throws FieldNotFound, IncorrectTagValue, UnsupportedMessageType {
        crack(message, id);
    }

    /** Called by the cracker for every (validated) FIX 4.4 ExecutionReport. */
    public void onMessage(ExecutionReport report, SessionID id) throws FieldNotFound {
        if (!clOrdId.equals(report.getString(ClOrdID.FIELD))) {
            return;
        }
        char status = report.getOrdStatus().getValue();
        line("REPORT cl_ord_id=" + clOrdId
                + " exec_id=" + report.getExecID().getValue()
                + " exec_type=" + report.getExecType().getValue()
                + " ord_status=" + status
                + " last_qty=" + decimal(report, LastQty.FIELD)
                + " last_px=" + decimal(report, LastPx.FIELD)
                + " cum_qty=" + decimal(report, CumQty.FIELD)
                + " leaves_qty=" + decimal(report, LeavesQty.FIELD)
                + " text=" + (report.isSetField(Text.FIELD) ? quote(report.getString(Text.FIELD)) : "-"));
        char execType = report.getExecType().getValue();
        if (status == ORD_STATUS_FILLED) {
            filled = true;
            finished.countDown();
        } else if (execType == ExecType.REJECTED || status == OrdStatus.REJECTED
                || status == OrdStatus.CANCELED || status == OrdStatus.EXPIRED) {
            finished.countDown();
        }
    }

    private void noteReject(String direction, Message message) {
        try {
            if (!MsgType.REJECT.equals(message.getHeader().getString(MsgType.FIELD))) {
                return;
            }
            sessionRejects.incrementAndGet();
            line("SESSION_REJECT direction=" + direction
                    + " ref_seq_num=" + field(message, RefSeqNum.FIELD)
                    + " ref_tag_id=" + field(message, RefTagID.FIELD)
                    + " ref_msg_type=" + field(message, RefMsgType.FIELD)
                    + " reason=" + field(message, SessionRejectReason.FIELD)
                    + " text=" + (message.isSetField(Text.FIELD) ? quote(message.getString(Text.FIELD)) : "-"));
            finished.countDown();
        } catch (FieldNotFound e) {
            line("SESSION_REJECT direction=" + direction + " unreadable=" + quote(e.getMessage()));
        }
    }

    private static String field(Message message, int tag) throws FieldNotFound {
        return message.isSetField(tag) ? message.getString(tag) : "-";
    }

    private static String decimal(Message message, int tag) throws FieldNotFound {
        return message.isSetField(tag) ? message.getDecimal(tag).stripTrailingZeros().toPlainString() : "-";
    }

    private static String quote(String text) {
        return "\"" + text.replace("\"", "'") + "\"";
    }

    /** Command-line options. */
    private record Options(String host, int port, String senderCompId, String targetCompId,
                           String symbol, int qty, int timeoutS, String logDir) {

        static final String USAGE = "usage: Peer --port N --sender ID --target ID --log-dir DIR"
                + " [--host 127.0.0.1] [--symbol ACME] [--qty 100] [--timeout-s 30]";

        static Options parse(String[] args) {
            String host = "127.0.0.1";
            String sender = null;
            String target = null;
            String symbol = "ACME";
            String logDir = null;
            int port = -1;
            int qty = 100;
            int timeoutS = 30;
            if (args.length % 2 != 0) {
                throw new IllegalArgumentException("options come in pairs");
            }
            for (int i = 0; i < args.length; i += 2) {
                String value = args[i + 1];
                switch (args[i]) {
                    case "--host" -> host = value;
                    case "--port" -> port = Integer.parseInt(value);
                    case "--sender" -> sender = value;
                    case "--target" -> target = value;
                    case "--symbol" -> symbol = value;
                    case "--qty" -> qty = Integer.parseInt(value);
                    case "--timeout-s" -> timeoutS = Integer.parseInt(value);
                    case "--log-dir" -> logDir = value;
                    default -> throw new IllegalArgumentException("unknown option " + args[i]);
                }
            }
            if (port <= 0 || sender == null || target == null || logDir == null || qty <= 0
                    || timeoutS <= 0) {
                throw new IllegalArgumentException("--port, --sender, --target, --log-dir required;"
                        + " --qty and --timeout-s positive");
            }
            return new Options(host, port, sender, target, symbol, qty, timeoutS, logDir);
        }

        /** The QuickFIX/J session settings: validation on, the FIX 4.4 dictionary from the jar. */
        String config() {
            return String.join("\n",
                    "[default]",
                    "ConnectionType=initiator",
                    "SocketConnectHost=" + host,
                    "SocketConnectPort=" + port,
                    "HeartBtInt=5",
                    "ReconnectInterval=1",
                    "StartTime=00:00:00",
                    "EndTime=00:00:00",
                    "ResetOnLogon=Y",
                    "UseDataDictionary=Y",
                    "DataDictionary=FIX44.xml",
                    "ValidateFieldsOutOfOrder=Y",
                    "ValidateFieldsHaveValues=Y",
                    "ValidateUserDefinedFields=Y",
                    "ValidateIncomingMessage=Y",
                    "FileLogPath=" + logDir,
                    "",
                    "[session]",
                    "BeginString=FIX.4.4",
                    "SenderCompID=" + senderCompId,
                    "TargetCompID=" + targetCompId,
                    "");
        }
    }
}
