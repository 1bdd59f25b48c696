// The live page: fetch each view's newest picture at most max-fps times a second, and the status once
// a second. Pictures exist only while this page asks for them (the server encodes on request).
"use strict";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function pollView(img, periodMs) {
  const view = img.dataset.view;
  const label = document.querySelector(`[data-frame-of="${view}"]`);
  let after = -1;
  for (;;) {
    try {
      const answer = await fetch(`/live/${view}.jpg?after=${after}`, { cache: "no-store", credentials: "same-origin" });
      if (answer.status === 401) { window.location.assign("/login"); return; }
      if (answer.status === 200) {
        after = Number(answer.headers.get("X-Frame-Number"));
        const old = img.src;
        img.src = URL.createObjectURL(await answer.blob());
        img.dataset.frame = String(after);
        if (label) label.textContent = String(after);
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      }
    } catch (err) {
      // the kiosk restarting or the network gone: try again after a pause
      await sleep(1000);
    }
    await sleep(periodMs);
  }
}

function show(field, value) {
  const el = document.querySelector(`[data-field="${field}"]`);
  if (el) el.textContent = value;
  return el;
}

async function pollStatus() {
  for (;;) {
    try {
      const answer = await fetch("/live/status.json", { cache: "no-store", credentials: "same-origin" });
      if (answer.status === 401) { window.location.assign("/login"); return; }
      if (answer.ok) {
        const s = await answer.json();
        const state = show("state", s.state.toUpperCase() + (s.down.length ? ` (down: ${s.down.join(", ")})` : ""));
        if (state) state.className = s.state;
        show("reason", `${s.code}: ${s.reason}`);
        show("score", s.score === null ? "-" : s.score.toFixed(4));
        show("threshold", s.threshold === null ? "-" : s.threshold.toFixed(4));
        show("attempt_id", String(s.attempt_id));
        show("fps", s.fps.toFixed(1));
        show("drops", String(s.drops));
        show("frame", String(s.frame));
      }
    } catch (err) {
      // shown again at the next answer
    }
    await sleep(1000);
  }
}

const live = document.querySelector("[data-live]");
if (live) {
  const periodMs = 1000 / Number(live.dataset.maxFps || "5");
  document.querySelectorAll("img[data-view]").forEach((img) => pollView(img, periodMs));
  pollStatus();
}
