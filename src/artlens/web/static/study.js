// The study page: one question at a time; the participant picks the two artworks most alike.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { study: null, queue: [], current: null, picked: [], participant: null, token: null, expertise: null };

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error((body.error || response.statusText) + (body.hint ? ` (${body.hint})` : ""));
    err.status = response.status;
    throw err;
  }
  return body;
}

// The participant the server issued to this browser (an id and the token its answers need), kept
// across visits; a new one is asked for when there is none, or when the server no longer knows it.
async function participant(renew = false) {
  const KEY = "artlens-study-participant-v2";
  let me = null;
  try { me = JSON.parse(localStorage.getItem(KEY)); } catch (_) { me = null; }
  if (renew || !me || !me.participant || !me.token) {
    me = await api("/api/study/participants", { method: "POST" });
    localStorage.setItem(KEY, JSON.stringify(me));
  }
  return me;
}

function checked(name) {
  const input = document.querySelector(`input[name="${name}"]:checked`);
  return input ? Number(input.value) : null;
}

function showQuestion() {
  const total = state.study.questions.length;
  if (!state.queue.length) {
    $("question").hidden = true;
    $("done").hidden = false;
    return;
  }
  state.current = state.queue[0];
  state.picked = [];
  const done = total - state.queue.length;
  $("counter").textContent = `Question ${done + 1} of ${total}`;
  $("progress").style.width = `${(100 * done) / total}%`;
  document.querySelectorAll('input[name="confidence"]').forEach((i) => { i.checked = false; });
  const box = $("choices");
  box.replaceChildren();
  state.current.artworks.forEach((art, k) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "choice";
    button.dataset.id = art.id;
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", `Artwork ${k + 1}`);
    const img = document.createElement("img");
    img.src = art.thumbnail;
    img.alt = `Artwork ${k + 1}`;
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = "chosen";
    button.append(img, mark);
    button.addEventListener("click", () => toggle(art.id));
    box.append(button);
  });
  update();
}

function toggle(id) {
  const at = state.picked.indexOf(id);
  if (at >= 0) state.picked.splice(at, 1);
  else {
    state.picked.push(id);
    if (state.picked.length > 2) state.picked.shift();
  }
  update();
}

function update() {
  document.querySelectorAll(".choice").forEach((b) => {
    b.setAttribute("aria-pressed", state.picked.includes(Number(b.dataset.id)) ? "true" : "false");
  });
  $("next").disabled = state.picked.length !== 2;
  $("hint").textContent = state.picked.length === 2 ? "Press Next to save." : `Pick ${2 - state.picked.length} more.`;
}

async function next() {
  $("next").disabled = true;
  $("error").textContent = "";
  const answer = { participant: state.participant, token: state.token, question: state.current.id,
                   pair: state.picked, confidence: checked("confidence"), expertise: state.expertise };
  const send = () => api("/api/study/answers", { method: "POST", headers: { "Content-Type": "application/json" },
                                                 body: JSON.stringify(answer) });
  try {
    try {
      await send();
    } catch (err) {
      if (err.status !== 403) throw err;
      const me = await participant(true);  // the study's key was replaced: start as a new participant
      Object.assign(state, { participant: me.participant, token: me.token });
      Object.assign(answer, { participant: me.participant, token: me.token });
      $("participant").textContent = me.participant;
      await send();
    }
    state.queue.shift();
    showQuestion();
  } catch (err) {
    $("error").textContent = `Not saved: ${err.message}`;
    update();
  }
}

async function start() {
  state.expertise = checked("expertise");
  $("intro").hidden = true;
  $("question").hidden = false;
  showQuestion();
}

async function init() {
  try {
    state.study = await api("/api/study");
    const me = await participant();
    state.participant = me.participant;
    state.token = me.token;
    $("participant").textContent = state.participant;
    const progress = await api(`/api/study/progress?participant=${encodeURIComponent(state.participant)}`);
    const answered = new Set(progress.answered);
    state.queue = state.study.questions.filter((q) => !answered.has(q.id));
    $("study-title").textContent = state.study.title;
  } catch (err) {
    $("intro").querySelector("p").textContent = `The study cannot be shown: ${err.message}`;
    $("start").disabled = true;
  }
  $("start").addEventListener("click", start);
  $("next").addEventListener("click", next);
  document.body.dataset.ready = "1";
}

init();
