// orchcap's page glue: htmx settings, toasts, and logging in again without losing what was typed.
// Everything here degrades to plain links and forms.
document.addEventListener("DOMContentLoaded", () => {
  if (window.htmx) {
    // Invalid forms come back as 422 with their errors: swap them in like a 200.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true, error: false },
      // A conflict (e.g. a case someone else decided) re-renders with the reason and the draft kept.
      { code: "409", swap: true, error: false },
      // Session ended or token stale: nothing is swapped, the request is sent again (below).
      { code: "40[13]", swap: false, error: false },
      { code: "[45]..", swap: false, error: true },
    ];
  }
  fadeToasts(document);
});

document.addEventListener("htmx:afterSettle", (event) => fadeToasts(event.target));

function fadeToasts(root) {
  // An error stays until it is dismissed (it may need reading twice); the rest fade after 6 s.
  root.querySelectorAll(".toast:not(.fade):not(.toast-error):not([data-fading])").forEach((toast) => {
    toast.dataset.fading = "";
    setTimeout(() => dismissToast(toast), 6000);
  });
}

function dismissToast(toast) {
  toast.classList.add("fade");
  setTimeout(() => toast.remove(), 500);
}

document.addEventListener("click", (event) => {
  const close = event.target instanceof Element && event.target.closest(".toast-close");
  if (close) { dismissToast(close.closest(".toast")); }
});

function toast(text, kind) {
  const box = document.getElementById("toasts");
  if (!box) { return; }
  const item = document.createElement("div");
  item.className = `toast toast-${kind || "info"}`;
  item.setAttribute("role", "status");
  const words = document.createElement("span");
  words.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "\u00d7";
  item.append(words, close);
  box.appendChild(item);
  fadeToasts(box);
}

// An htmx request answered 401 (the session ended: the server sends HX-Login-Required instead of
// the login page) or 403 with HX-CSRF-Failed (the token went stale, e.g. after logging in in
// another tab) is not swapped, so the form keeps what was typed. The page fetches a fresh token;
// when the session is gone it asks for the password in a dialog, logs in by fetch, then sends
// the request again with the values it had.
(function () {
  const waiting = [];  // requests to send again once the session is back
  let recovering = false;

  function dialog() { return document.getElementById("session-dialog"); }

  async function currentSession() {
    const response = await fetch(dialog().dataset.tokenUrl, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    return response.json();
  }

  function useToken(token) {
    const body = document.body;
    let headers = {};
    try { headers = JSON.parse(body.getAttribute("hx-headers") || "{}"); } catch (error) { headers = {}; }
    headers["X-CSRFToken"] = token;
    body.setAttribute("hx-headers", JSON.stringify(headers));
    document.querySelectorAll("input[name=csrfmiddlewaretoken]").forEach((input) => { input.value = token; });
  }

  function sendAgain(token) {
    const requests = waiting.splice(0);
    requests.forEach((config) => {
      if (!config.elt || !config.elt.isConnected) { return; }
      const values = {};
      const data = config.formData || new FormData();
      for (const [key, value] of data.entries()) {
        if (key in values) { values[key] = [].concat(values[key], value); } else { values[key] = value; }
      }
      values.csrfmiddlewaretoken = token;
      htmx.ajax(config.verb.toUpperCase(), config.path, { source: config.elt, values });
    });
  }

  async function recover() {
    if (recovering) { return; }
    recovering = true;
    try {
      const session = await currentSession();
      if (session.authenticated && session.username === dialog().dataset.username) {
        useToken(session.csrf_token);
        sendAgain(session.csrf_token);
        recovering = false;
      } else {
        const box = dialog();
        box.querySelector("#session-error").hidden = true;
        box.showModal();
        box.querySelector("#session-password").focus();
      }
    } catch (error) {
      recovering = false;
      toast("The server did not answer; what you typed is still here. Try again in a moment.", "error");
    }
  }

  async function logIn(form) {
    const box = dialog();
    const error = box.querySelector("#session-error");
    const fresh = await currentSession();  // the login form needs a token the server accepts
    const body = new URLSearchParams(new FormData(form));
    body.set("csrfmiddlewaretoken", fresh.csrf_token);
    body.set("next", box.dataset.tokenUrl);  // a successful login lands on the token, as JSON
    let session = null;
    let response = null;
    try {
      response = await fetch(box.dataset.loginUrl, {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": fresh.csrf_token },
      });
      if ((response.headers.get("Content-Type") || "").startsWith("application/json")) {
        session = await response.json();
      }
    } catch (failure) { session = null; }
    if (session && session.authenticated && session.username === box.dataset.username) {
      form.reset();
      box.close();
      useToken(session.csrf_token);
      recovering = false;
      sendAgain(session.csrf_token);
      return;
    }
    let reason = "That did not log you in: check the password.";
    if (response && !session) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const said = page.querySelector(".errorlist, [role=alert], .error");
      if (said && said.textContent.trim()) { reason = said.textContent.trim(); }
    }
    error.textContent = reason;
    error.hidden = false;
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    const loginRequired = xhr.status === 401 && xhr.getResponseHeader("HX-Login-Required");
    const staleToken = xhr.status === 403 && xhr.getResponseHeader("HX-CSRF-Failed");
    if (xhr.status === 403 && !staleToken) {
      event.detail.shouldSwap = false;
      toast("Not allowed: your role does not permit this. What you typed is still here.", "error");
      return;
    }
    if (!(loginRequired || staleToken) || !dialog()) { return; }
    event.detail.shouldSwap = false;
    const config = event.detail.requestConfig;
    if (config) {
      // The latest attempt from an element replaces an earlier one (it holds the latest values).
      const earlier = waiting.findIndex((queued) => queued.elt === config.elt);
      if (earlier >= 0) { waiting.splice(earlier, 1); }
      waiting.push(config);
    }
    recover();
  });

  document.addEventListener("submit", (event) => {
    if (event.target.id !== "session-login") { return; }
    event.preventDefault();
    logIn(event.target);
  });

  document.addEventListener("close", (event) => {
    // Dismissed without logging in: the requests stay queued for the next attempt.
    if (event.target.id === "session-dialog") { recovering = false; }
  }, true);
})();

// data-select-on-click, data-confirm and copy buttons: static/js/forms.js.

// The navigation menu (a <details> in base.html) is a button on phones and a row of links on wider
// screens: kept open there so its links are shown even where ::details-content is not supported.
(function () {
  const wide = window.matchMedia("(min-width: 62rem)");
  function fit() {
    document.querySelectorAll("[data-nav-menu]").forEach((menu) => { menu.open = wide.matches; });
  }
  document.addEventListener("DOMContentLoaded", fit);
  wide.addEventListener("change", fit);
})();

// A table wider than its .table-scroll can be scrolled with the keyboard: the container becomes a
// focusable, named region only while it overflows (no extra tab stop for tables that fit).
(function () {
  function mark(root) {
    (root || document).querySelectorAll(".table-scroll").forEach((box) => {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        const caption = box.querySelector("caption");
        box.setAttribute("aria-label", caption ? caption.textContent.trim() : "Table, scrolls sideways");
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", () => mark(document));
  document.addEventListener("htmx:afterSettle", () => mark(document));
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(() => mark(document), 150); });
})();
