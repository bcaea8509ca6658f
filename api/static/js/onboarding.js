// Joining: the sign-up form, two-factor enrolment with a QR code, and the recovery codes.

import * as api from "./api.js";
import { $, el, say, showView } from "./dom.js";
import { drawQr } from "./qr.js";
import * as session from "./session.js";

let enrolled = () => {}; // what to do once the recovery codes are acknowledged

/** Create the account, then log in with it (no code yet: 2FA is not set up). */
async function submitSignup(event) {
  event.preventDefault();
  const email = $("#signup-email").value.trim();
  const password = $("#signup-password").value;
  say("#signup-error", "");
  $("#signup-submit").disabled = true;
  try {
    await api.request("/v1/auth/signup", { method: "POST", body: { email, password } });
    await api.login(email, password);
    $("#signup-password").value = "";
    await enrol();
  } catch (error) {
    say("#signup-error", error.message, true);
  } finally {
    $("#signup-submit").disabled = false;
  }
}

/** Show the enrolment: a new TOTP secret as a QR code, the key as text and the setup link. */
export async function enrol() {
  showView("twofa-view");
  say("#twofa-error", "");
  const { secret, otpauth_uri: uri } = await api.request("/v1/auth/2fa/enroll", { method: "POST" });
  drawQr($("#twofa-qr"), uri);
  $("#twofa-secret").textContent = secret;
  $("#twofa-uri").textContent = uri;
  $("#twofa-code").value = "";
  $("#twofa-code").focus();
}

async function submitCode(event) {
  event.preventDefault();
  say("#twofa-error", "");
  $("#twofa-submit").disabled = true;
  try {
    const answer = await api.request("/v1/auth/2fa/verify", {
      method: "POST",
      body: { code: $("#twofa-code").value.trim() },
    });
    // The answer is a new session that passed 2FA; the one used to enrol is ended, not left
    // alive on the server with its refresh token forgotten here.
    const enrolling = session.accessToken();
    session.replace(answer);
    fetch("/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${enrolling}` } }).catch(() => {});
    $("#twofa-secret").textContent = "";
    $("#twofa-uri").textContent = "";
    $("#recovery-codes").replaceChildren(...answer.recovery_codes.map((c) => el("li", {}, c)));
    showView("recovery-view");
  } catch (error) {
    say("#twofa-error", error.message, true);
  } finally {
    $("#twofa-submit").disabled = false;
  }
}

function acknowledge() {
  // Shown once: gone from the page as soon as the person moves on.
  $("#recovery-codes").replaceChildren();
  enrolled();
}

/** Wire the forms; `onEnrolled` runs when 2FA is verified and the codes were seen. */
export function init(onEnrolled) {
  enrolled = onEnrolled;
  $("#signup-form").addEventListener("submit", submitSignup);
  $("#twofa-form").addEventListener("submit", submitCode);
  $("#recovery-done").addEventListener("click", acknowledge);
  $("#show-signup").addEventListener("click", () => showView("signup-view"));
  $("#show-login").addEventListener("click", () => showView("login-view"));
}
