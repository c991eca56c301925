// The console's own behaviour, beside htmx: copy buttons, expiry countdowns and a command's live
// output. Served from the controller with a strict CSP: no inline script, no eval.
(function () {
  "use strict";
  const csrf = () =>
    document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest?.("[data-copy]");
    if (!button) return;
    const source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(source);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });

  // Countdowns: data-expires is an ISO time; the text is mm:ss until then.
  function tick() {
    for (const el of document.querySelectorAll("[data-expires]")) {
      const left = Math.max(
        0,
        Math.floor((Date.parse(el.getAttribute("data-expires")) - Date.now()) / 1000),
      );
      const text = left > 0
        ? `${String(Math.floor(left / 60)).padStart(2, "0")}:${String(left % 60).padStart(2, "0")}`
        : "expired";
      if (el.textContent !== text) el.textContent = text;
      if (left === 0) el.closest("[data-expiry-scope]")?.classList.add("expired");
    }
  }
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSettle", tick);
  tick();

  // Run a command: the answer is NDJSON (one event per line, output base64), read as it arrives.
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest?.("form[data-exec]");
    if (!form) return;
    event.preventDefault();
    const out = document.getElementById(form.getAttribute("data-exec"));
    const status = document.getElementById(form.getAttribute("data-exec") + "-status");
    const button = form.querySelector("button[type=submit]");
    const shell = new FormData(form).get("shell");
    const timeout = Number(new FormData(form).get("timeout_secs")) || 30;
    out.textContent = "";
    status.textContent = "running…";
    button.disabled = true;
    const decoder = new TextDecoder();
    const append = (text) => {
      out.textContent += text;
      out.scrollTop = out.scrollHeight;
    };
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf() },
        body: JSON.stringify({ shell, timeout_secs: timeout }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        status.textContent = body?.error?.message ?? `failed: HTTP ${response.status}`;
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let pending = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        pending += value;
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const line of lines.filter(Boolean)) {
          const e = JSON.parse(line);
          if (e.type === "stdout" || e.type === "stderr") {
            const bytes = Uint8Array.from(atob(e.data), (c) => c.charCodeAt(0));
            append(decoder.decode(bytes, { stream: true }));
          } else if (e.type === "exit") {
            status.textContent = (e.timed_out ? "timed out, " : "") + `exit ${e.exit_code}` +
              (e.signal ? ` (${e.signal})` : "") + (e.truncated ? " (output truncated)" : "") +
              ` in ${e.duration_ms} ms`;
          } else if (e.type === "refused") {
            status.textContent = `refused by the host (${e.code}): ${e.message}`;
          } else if (e.type === "error") {
            status.textContent = `${e.error.code}: ${e.error.message}`;
          }
        }
      }
      document.body.dispatchEvent(new Event("history-changed"));
    } catch (error) {
      status.textContent = `failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
})();

// Ages: <time data-age datetime=…> reads "12 s ago", kept current without asking the server.
(function () {
  "use strict";
  function age(seconds) {
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }
  function update() {
    for (const el of document.querySelectorAll("time[data-age]")) {
      const seconds = Math.max(
        0,
        Math.round((Date.now() - Date.parse(el.getAttribute("datetime"))) / 1000),
      );
      const text = age(seconds);
      if (el.textContent !== text) el.textContent = text;
    }
  }
  setInterval(update, 1000);
  document.addEventListener("htmx:afterSettle", update);
  document.addEventListener("DOMContentLoaded", update);
})();
