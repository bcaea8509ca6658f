// A QR code drawn on a canvas, for an authenticator app to scan (vendored qrcode-generator).

import qrcode from "../vendor/qrcode-generator.module.js";

const MODULE_PX = 5;
const QUIET_MODULES = 4; // the blank border scanners need around the code

/** Draw `text` as a QR code (type chosen to fit, error correction M) on `canvas`. */
export function drawQr(canvas, text) {
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  const count = code.getModuleCount();
  const size = (count + 2 * QUIET_MODULES) * MODULE_PX;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#000000";
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (code.isDark(row, col)) {
        ctx.fillRect((col + QUIET_MODULES) * MODULE_PX, (row + QUIET_MODULES) * MODULE_PX, MODULE_PX, MODULE_PX);
      }
    }
  }
  canvas.dataset.modules = String(count);
}
