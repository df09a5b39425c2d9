// wapulse dashboard: liveness only. Pages are complete without this file.
// One EventSource on /ui/live: every tick updates the counts on the page
// ([data-live]); when the fleet changed, the page's <main> is fetched again
// and swapped in (at most once a second). "/" focuses the session search.
(() => {
  "use strict";
  const live = document.getElementById("live");
  const main = document.getElementById("main");
  const say = (state, text) => { if (live) { live.dataset.state = state; live.textContent = text; } };
  let version = null;
  let previous = null; // the last tick and when it came, for rates
  const rate = {}; // the last rate shown per key, kept across <main> swaps
  function show(t) {
    for (const el of document.querySelectorAll("[data-live]")) {
      const v = t[el.dataset.live];
      if (v !== undefined) el.textContent = String(v);
    }
    for (const el of document.querySelectorAll("[data-rate]")) {
      if (rate[el.dataset.rate] !== undefined) el.textContent = rate[el.dataset.rate];
    }
  }
  function rates(t) {
    const now = performance.now();
    if (previous) {
      const secs = (now - previous.at) / 1000;
      for (const key of Object.keys(t)) {
        if (secs > 0 && typeof t[key] === "number" && typeof previous.t[key] === "number") {
          rate[key] = `${Math.max(0, Math.round((t[key] - previous.t[key]) / secs))}/s now`;
        }
      }
    }
    previous = { t, at: now };
  }
  let busy = false;
  async function refresh() {
    if (busy || !main) return;
    busy = true;
    try {
      const r = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (r.ok) {
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        const fresh = doc.getElementById("main");
        // Keep what a person is typing: no swap while a form field has focus.
        const typing = document.activeElement && main.contains(document.activeElement) &&
          /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
        if (fresh && !typing) {
          main.innerHTML = fresh.innerHTML;
          if (previous) show(previous.t);
        }
      }
    } catch (_) { /* the next tick tries again */ }
    busy = false;
  }
  function connect() {
    if (!window.EventSource) return;
    const source = new EventSource("/ui/live");
    source.addEventListener("open", () => say("live", "live"));
    source.addEventListener("tick", (e) => {
      let t;
      try { t = JSON.parse(e.data); } catch (_) { return; }
      say("live", "live");
      rates(t);
      show(t);
      if (version !== null && t.version !== version) refresh();
      version = t.version;
    });
    source.addEventListener("error", () => say("reconnecting", "reconnecting…"));
  }
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName)) return;
    const q = document.getElementById("q");
    if (q) { e.preventDefault(); q.focus(); }
  });
  connect();
})();
