/* artlens web page: plain JavaScript over the REST API (/api/...), no external code. */
"use strict";

// -- helpers of the search page and the "find an artist" view below ---------------------------------
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    // through the CSSOM: the Content-Security-Policy refuses style attributes
    else if (key === "style") {
      for (const rule of value.split(";")) {
        const at = rule.indexOf(":");
        if (at > 0) node.style.setProperty(rule.slice(0, at).trim(), rule.slice(at + 1).trim());
      }
    }
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `request failed (HTTP ${status})`);
    this.status = status;
    this.hint = body && body.hint;
  }
}

// GET, or POST of a FormData; the JSON answer. A failed request throws ApiError (the server's error and hint).
// On a server that needs a token (401), the page asks for one once and signs in with it: the server
// keeps it in an HttpOnly cookie, which the page's requests (its images too) then carry.
let signingIn = null;
async function api(path, form) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(path, form ? { method: "POST", body: form } : {});
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    if (res.status === 401 && attempt === 0 && await signIn()) continue;
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }
}

function signIn() {
  signingIn = signingIn || (async () => {
    const token = window.prompt("This artlens server needs an access token. Token:");
    if (!token) return false;
    const res = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" },
                                              body: JSON.stringify({ token: token.trim() }) });
    if (res.ok) window.location.reload();  // the images, requested before, load with the cookie now
    return res.ok;
  })();
  return signingIn;
}

/* The search page. */
(() => {
  const ASPECTS = [
    { name: "content", label: "Content", why: "what is depicted" },
    { name: "style", label: "Style", why: "technique and texture" },
    { name: "colour", label: "Colour", why: "the palette" },
    { name: "text", label: "Text", why: "titles and descriptions" },
    { name: "learned", label: "Learned", why: "trained on this collection's labels" },
  ];
  const IMAGE_ASPECTS = ["content", "style", "colour"];
  const PAGE = 24;
  const FACETS_SHOWN = 8;
  const REQUERY_MS = 300;

  const state = {
    stats: null,
    facets: [],
    weights: {},            // slider values 0..1 by aspect
    weightsTouched: false,  // false: the server's default mix for each kind of query
    filters: {},            // column -> Set of values
    query: { kind: "browse" },
    k: PAGE,
    results: [],
    answer: null,
    browse: { seed: Math.floor(Math.random() * 1e6), offset: 0, total: 0 },
    liked: [],
    seq: 0,
  };

  // -- small helpers -----------------------------------------------------------------------------
  function svg(path, filled = false) {
    const ns = "http://www.w3.org/2000/svg";
    const s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    s.append(p);
    if (filled) s.style.fill = "currentColor";
    return s;
  }
  const HEART = "M12 20s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 10c0 5.6-7 10-7 10z";

  const aspectInfo = (name) => ASPECTS.find((a) => a.name === name) || { name, label: name, why: "" };
  const cap = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);
  const pct = (x) => `${Math.round(x * 100)}%`;
  const titleOf = (meta, id) => (meta && (meta.title || meta.name)) || `Artwork ${id}`;
  const byline = (meta) => [meta.artist, meta.date, meta.style].filter(Boolean).join(" · ");

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  let toastTimer = null;
  function toast(message) {
    const t = $("toast");
    t.textContent = message;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  // -- liked list (kept in this browser) ---------------------------------------------------------
  const likedKey = () => `artlens.liked.${state.stats ? state.stats.collection : ""}`;

  function loadLiked() {
    try { state.liked = JSON.parse(localStorage.getItem(likedKey()) || "[]"); } catch (_) { state.liked = []; }
    if (!Array.isArray(state.liked)) state.liked = [];
  }

  function saveLiked() {
    try { localStorage.setItem(likedKey(), JSON.stringify(state.liked)); } catch (_) { /* private mode */ }
    renderLiked();
    document.querySelectorAll(".card .like").forEach((b) => b.setAttribute("aria-pressed", String(isLiked(Number(b.dataset.id)))));
    const detailLike = document.querySelector("#detail-body [data-like]");
    if (detailLike) detailLike.textContent = isLiked(Number(detailLike.dataset.like)) ? "♥ Liked" : "♡ Like";
  }

  const isLiked = (id) => state.liked.some((x) => x.id === id);

  function toggleLike(id, meta, thumbnail) {
    if (isLiked(id)) state.liked = state.liked.filter((x) => x.id !== id);
    else state.liked.unshift({ id, title: titleOf(meta, id), thumbnail });
    state.liked = state.liked.slice(0, state.stats ? state.stats.limits.max_liked : 100);
    saveLiked();
  }

  function renderLiked() {
    $("liked-count").textContent = String(state.liked.length);
    $("recommend-btn").disabled = state.liked.length === 0;
    const list = $("liked-list");
    list.replaceChildren(...state.liked.map((item) => el("div", { class: "liked-item" },
      el("img", { src: item.thumbnail, alt: item.title, title: item.title, loading: "lazy", onclick: () => openDetail(item.id) }),
      el("button", { type: "button", "aria-label": `Remove ${item.title}`, onclick: () => { state.liked = state.liked.filter((x) => x.id !== item.id); saveLiked(); } }, "×"),
    )));
  }

  // -- weights ------------------------------------------------------------------------------------
  function collectionAspects() {
    const have = state.stats ? state.stats.aspects : ASPECTS.map((a) => a.name);
    return ASPECTS.map((a) => a.name).filter((a) => have.includes(a)).concat(have.filter((a) => !ASPECTS.some((x) => x.name === a)));
  }

  function queryAspects() {
    const q = state.query;
    const all = collectionAspects();
    if (state.answer && state.answer.aspects && q.kind !== "browse") return state.answer.aspects;
    if (q.kind === "text") return all.filter((a) => a === "text");
    if (q.kind === "image") return all.filter((a) => IMAGE_ASPECTS.includes(a));
    return all;
  }

  function renderSliders() {
    const box = $("sliders");
    box.replaceChildren(...collectionAspects().map((name) => {
      const info = aspectInfo(name);
      const value = Math.round((state.weights[name] || 0) * 100);
      const input = el("input", { type: "range", min: "0", max: "100", step: "5", value: String(value), id: `w-${name}`,
        "data-testid": `weight-${name}`, "aria-describedby": `why-${name}` });
      const output = el("output", { for: `w-${name}`, id: `o-${name}` }, `${value}`);
      input.addEventListener("input", () => {
        state.weights[name] = Number(input.value) / 100;
        state.weightsTouched = true;
        output.textContent = input.value;
        remixLocally();
        requery();
      });
      return el("div", { class: "slider", "data-aspect": name, style: `--c: var(--${name}, var(--accent))` },
        el("label", { for: `w-${name}` }, el("span", { class: "dot" }), info.label), output, input,
        el("span", { class: "why", id: `why-${name}` }, info.why));
    }));
    markInactiveSliders();
  }

  function markInactiveSliders() {
    const usable = queryAspects();
    document.querySelectorAll(".slider").forEach((s) => {
      const off = state.query.kind !== "browse" && !usable.includes(s.dataset.aspect);
      s.classList.toggle("inactive", off);
      const why = s.querySelector(".why");
      why.textContent = off ? "not available for this query" : aspectInfo(s.dataset.aspect).why;
    });
  }

  function showWeights(weights) {
    for (const name of collectionAspects()) {
      state.weights[name] = weights[name] || 0;
      const input = $(`w-${name}`);
      if (input) { input.value = String(Math.round(state.weights[name] * 100)); $(`o-${name}`).textContent = input.value; }
    }
  }

  function weightsParam() {
    if (!state.weightsTouched) return null;
    const usable = queryAspects();
    if (!usable.some((a) => (state.weights[a] || 0) > 0)) return null;  // all zero: the server's default mix
    return collectionAspects().map((a) => `${a}=${(state.weights[a] || 0).toFixed(2)}`).join(",");
  }

  /** Re-order the shown results at once from their per-aspect scores; the server re-ranks after. */
  function remixLocally() {
    if (state.query.kind === "browse" || !state.results.length) return;
    const w = state.weights;
    const mixed = (hit) => {
      let sum = 0; let mass = 0;
      for (const [a, s] of Object.entries(hit.aspects)) { const x = w[a] || 0; if (x > 0) { sum += x * s; mass += x; } }
      return mass > 0 ? sum / mass : hit.score;
    };
    const hits = state.results.map((h) => ({ ...h, score: mixed(h) })).sort((a, b) => b.score - a.score || a.id - b.id);
    renderCards(hits);
  }

  // -- filters ------------------------------------------------------------------------------------
  function activeFilterCount() { return Object.values(state.filters).reduce((n, s) => n + s.size, 0); }

  function filtersParam() {
    const out = {};
    for (const [col, values] of Object.entries(state.filters)) if (values.size) out[col] = [...values];
    return Object.keys(out).length ? JSON.stringify(out) : null;
  }

  function setFilter(column, value, on) {
    const set = state.filters[column] || (state.filters[column] = new Set());
    if (on) set.add(value); else set.delete(value);
    renderFacets();
    state.k = PAGE;
    state.browse.offset = 0;
    run();
  }

  function renderFacets() {
    const box = $("facets");
    const n = activeFilterCount();
    $("filters-clear").hidden = n === 0;
    $("filter-badge").hidden = n === 0;
    $("filter-badge").textContent = String(n);
    if (!state.facets.length) { box.replaceChildren(el("p", { class: "muted small" }, "This collection has no metadata to filter by.")); return; }
    box.replaceChildren(...state.facets.map((facet) => {
      const chosen = state.filters[facet.column] || new Set();
      const expanded = box.dataset[`open_${facet.column}`] === "1";
      const values = facet.values.filter((v, i) => expanded || i < FACETS_SHOWN || chosen.has(v.value));
      const chips = values.map((v) => el("button", {
        type: "button", class: "chip", "aria-pressed": String(chosen.has(v.value)), "data-column": facet.column, "data-value": v.value,
        onclick: () => setFilter(facet.column, v.value, !chosen.has(v.value)),
      }, v.value, el("span", { class: "n" }, String(v.count))));
      const more = facet.values.length > FACETS_SHOWN
        ? el("button", { type: "button", class: "link more", onclick: () => { box.dataset[`open_${facet.column}`] = expanded ? "0" : "1"; renderFacets(); } },
          expanded ? "Show fewer" : `Show all ${facet.values.length}`)
        : null;
      return el("div", { class: "facet", "data-facet": facet.column },
        el("h3", {}, facet.kind === "decades" ? `${cap(facet.column)} (decade)` : cap(facet.column)),
        el("div", { class: "chips" }, chips), more);
    }));
  }

  // -- queries ------------------------------------------------------------------------------------
  function setQuery(query) {
    if (query.kind === "browse") renderMembers(null);
    if (state.query.kind === "image" && state.query.url && query.kind !== "image") URL.revokeObjectURL(state.query.url);
    state.query = query;
    state.answer = null;
    $("sidebar").classList.remove("open");  // phones: show the results, not the panel
    $("sidebar-toggle").setAttribute("aria-expanded", "false");
    state.k = PAGE;
    state.browse.offset = 0;
    renderQueryCard();
    markInactiveSliders();
    window.scrollTo({ top: 0, behavior: "smooth" });
    run();
  }

  const requery = debounce(() => run(), REQUERY_MS);

  function run() {
    return state.query.kind === "browse" ? browse(false) : search();
  }

  function setBusy(on) { $("grid").classList.toggle("busy", on); }

  function showNotice(message, kind = "error") {
    const box = $("notice");
    if (!message) { box.hidden = true; return; }
    box.className = `notice ${kind === "empty" ? "empty" : ""}`;
    box.textContent = message;
    box.hidden = false;
  }

  async function search() {
    const seq = ++state.seq;
    const q = state.query;
    const form = new FormData();
    form.append("k", String(state.k));
    if (q.kind === "text") form.append("text", q.text);
    else if (q.kind === "id") form.append("id", String(q.id));
    else if (q.kind === "liked") q.ids.forEach((id) => form.append("liked", String(id)));
    else if (q.kind === "image") {
      if (q.uploadId) form.append("upload_id", q.uploadId);
      else form.append("image", q.file, q.file.name || "upload");
    }
    const weights = weightsParam();
    if (weights) form.append("weights", weights);
    const filters = filtersParam();
    if (filters) form.append("filters", filters);
    setBusy(true);
    if (!state.results.length) renderSkeletons();
    try {
      const answer = await api("/api/search", form);
      if (seq !== state.seq) return;
      if (q.kind === "image") q.uploadId = answer.query.upload_id;
      state.answer = answer;
      state.results = answer.results;
      if (!state.weightsTouched) showWeights(answer.weights);
      markInactiveSliders();
      showNotice(answer.results.length ? null : "Nothing matches this query with these filters. Try removing a filter.", "empty");
      renderCards(answer.results);
      renderHead();
      renderMembers(answer);
    } catch (err) {
      if (seq !== state.seq) return;
      if (err.status === 404 && q.kind === "image" && q.uploadId) { q.uploadId = null; return search(); }
      state.results = [];
      renderCards([]);
      showNotice(err.hint ? `${err.message}. ${cap(err.hint)}.` : err.message);
    } finally {
      if (seq === state.seq) setBusy(false);
    }
  }

  async function browse(append) {
    const seq = ++state.seq;
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.browse.offset), seed: String(state.browse.seed) });
    const filters = filtersParam();
    if (filters) params.append("filters", filters);
    setBusy(true);
    if (!append && !state.results.length) renderSkeletons();
    try {
      const page = await api(`/api/artworks?${params}`);
      if (seq !== state.seq) return;
      state.browse.total = page.total;
      state.results = append ? state.results.concat(page.results) : page.results;
      showNotice(state.results.length ? null : "No artworks match these filters.", "empty");
      renderCards(state.results);
      renderHead();
    } catch (err) {
      if (seq === state.seq) showNotice(err.message);
    } finally {
      if (seq === state.seq) setBusy(false);
    }
  }

  // -- rendering ----------------------------------------------------------------------------------
  /** On a portal: which institutions answered this search ("3 of 4 institutions answered; …"). */
  function renderMembers(answer) {
    const line = $("members-line");
    if (!answer || !answer.members) { line.hidden = true; return; }
    line.textContent = answer.line || `${answer.answered} of ${answer.asked} institutions answered`;
    line.classList.toggle("partial", answer.answered < answer.asked);
    line.title = answer.members.map((m) => `${m.name}: ${m.status}, ${m.count} hits, ${Math.round(m.ms)} ms${m.detail ? ` (${m.detail})` : ""}`).join("\n");
    line.hidden = false;
  }

  function renderHead() {
    const q = state.query;
    const a = state.answer;
    const n = state.results.length;
    let title = state.stats && state.stats.portal ? "Explore the federation" : "Explore the collection";
    let meta = "";
    if (q.kind === "browse") {
      meta = `${state.browse.total.toLocaleString()} artworks${activeFilterCount() ? " match the filters" : ""}`;
    } else {
      if (q.kind === "text") title = `Results for “${q.text}”`;
      else if (q.kind === "image") title = "Similar to your picture";
      else if (q.kind === "id") title = `More like “${titleOf(q.meta, q.id)}”`;
      else if (q.kind === "liked") title = "Recommended for you";
      const mix = a ? Object.entries(a.weights).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${aspectInfo(k).label.toLowerCase()} ${pct(v)}`).join(" · ") : "";
      meta = `${n} result${n === 1 ? "" : "s"}${mix ? ` · ${mix}` : ""}${a ? ` · ${Math.round(a.took_ms)} ms` : ""}`;
      if (q.kind === "liked") meta = `from ${q.ids.length} liked work${q.ids.length === 1 ? "" : "s"}, several artists · ` + meta;
    }
    $("results-title").textContent = title;
    $("results-meta").textContent = meta;
    const canMore = q.kind === "browse" ? state.results.length < state.browse.total
      : n >= state.k && state.k < (state.stats ? state.stats.limits.max_k : 200);
    $("more-btn").hidden = !canMore;
  }

  function renderSkeletons() {
    $("grid").replaceChildren(...Array.from({ length: 8 }, () => el("div", { class: "skeleton", "aria-hidden": "true" })));
  }

  function scoreBars(aspects, weights) {
    const names = collectionAspects().filter((a) => a in aspects);
    return el("div", { class: "bars" }, names.map((name) => {
      const v = aspects[name];
      const used = !weights || (weights[name] || 0) > 0;
      return el("div", { class: `bar${used ? "" : " off"}`, style: `--c: var(--${name}, var(--accent))`, title: `${aspectInfo(name).label} similarity ${v.toFixed(3)}` },
        el("span", {}, aspectInfo(name).label),
        el("span", { class: "track" }, el("span", { class: "fill", style: `width: ${Math.max(0, Math.min(1, v)) * 100}%` })),
        el("span", { class: "v" }, v.toFixed(2)));
    }));
  }

  function card(hit, rank, withScores) {
    const meta = hit.metadata || {};
    const title = titleOf(meta, hit.id);
    const like = el("button", { type: "button", class: "like", "data-id": String(hit.id), "aria-pressed": String(isLiked(hit.id)),
      "aria-label": `Like ${title}`, "data-testid": "like", onclick: () => toggleLike(hit.id, meta, hit.thumbnail) }, svg(HEART));
    const weights = state.weightsTouched ? state.weights : state.answer && state.answer.weights;
    return el("article", { class: "card", "data-id": String(hit.id), "data-testid": "result-card" },
      el("button", { type: "button", class: "thumb", "aria-label": `Open ${title}`, onclick: () => openDetail(hit.id, hit) },
        el("img", { src: hit.thumbnail, alt: title, loading: "lazy", decoding: "async" }),
        withScores ? el("span", { class: "rank" }, `#${rank}`) : null),
      like,
      el("div", { class: "body" },
        el("div", { class: "title", title }, title),
        el("div", { class: "sub" }, byline(meta) || "\u00a0"),
        hit.institution ? el("span", { class: "institution", "data-testid": "institution", title: `From ${hit.institution}` }, hit.institution) : null,
        withScores ? scoreBars(hit.aspects, weights) : null,
        el("div", { class: "foot" },
          withScores ? el("span", { class: "score", title: "Weighted mix of the aspect scores" }, `score ${hit.score.toFixed(3)}`) : el("span"),
          el("button", { type: "button", class: "btn small", "data-testid": "more-like-this", onclick: () => moreLike(hit.id, meta) }, "More like this"))));
  }

  function renderCards(hits) {
    const withScores = state.query.kind !== "browse";
    $("grid").replaceChildren(...hits.map((h, i) => card(h, i + 1, withScores)));
  }

  function renderQueryCard() {
    const q = state.query;
    const box = $("query-card");
    box.hidden = !["image", "id", "liked"].includes(q.kind);
    box.dataset.kind = q.kind === "id" ? "artwork" : q.kind;
    $("labels").replaceChildren();
    $("verdict").hidden = true;
    const img = $("query-preview");
    img.onclick = null;
    img.hidden = q.kind === "liked";
    $("query-mosaic").hidden = q.kind !== "liked";
    if (q.kind === "image") {
      img.src = q.url;
      img.alt = "Your picture";
      $("query-title").textContent = q.file.name ? `Your picture: ${q.file.name}` : "Your picture";
    } else if (q.kind === "id") {
      img.src = `/api/artworks/${q.id}/thumbnail`;
      img.alt = titleOf(q.meta, q.id);
      img.onclick = () => openDetail(q.id);
      $("query-title").textContent = `More like “${titleOf(q.meta, q.id)}”${q.meta && q.meta.artist ? ` by ${q.meta.artist}` : ""}`;
    } else if (q.kind === "liked") {
      const shown = state.liked.filter((x) => q.ids.includes(x.id)).slice(0, 4);
      $("query-mosaic").replaceChildren(...shown.map((x) => el("img", { src: x.thumbnail, alt: x.title, title: x.title })));
      $("query-title").textContent = `Recommendations from ${q.ids.length} liked work${q.ids.length === 1 ? "" : "s"}`;
    }
  }

  // -- upload: annotation and copyright verdict ---------------------------------------------------
  /** Which optional services this server offers (from /api/stats): the page calls only those. */
  const offers = (name) => Boolean(state.stats && state.stats.features && state.stats.features[name]);

  async function annotate(file, query) {
    const box = $("labels");
    box.replaceChildren(el("span", { class: "muted small" }, el("span", { class: "spinner-line" }), "Predicting labels…"));
    const form = new FormData();
    form.append("image", file, file.name || "upload");
    try {
      const answer = await api("/api/annotate", form);
      if (state.query !== query) return;
      const columns = answer.columns || {};
      const groups = Object.entries(answer.labels).map(([column, labels]) => {
        const weak = Boolean(columns[column] && columns[column].weak);
        return el("div", { class: `label-group${weak ? " weak" : ""}`, "data-column": column, "data-weak": String(weak) },
          el("span", { class: "col" }, column),
          labels.slice(0, 3).map((l) => el("button", {
            type: "button", class: "label", title: `Filter by ${column} = ${l.label}`,
            onclick: () => { if (state.facets.some((f) => f.column === column)) setFilter(column, l.label, true); },
          }, l.label, l.probability === null ? null : el("span", { class: "p" }, pct(l.probability)))),
          weak ? el("span", { class: "weak-note", "data-testid": "weak-labels",
            title: "No labelled artwork of the collection is near this picture: these labels are guesses" }, "a guess: unlike the labelled works") : null);
      });
      box.replaceChildren(...groups);
    } catch (err) {
      if (state.query !== query) return;
      box.replaceChildren(el("span", { class: "muted small" }, `Labels unavailable: ${err.message}`));
    }
  }

  function alternativeStrip(alternatives) {
    return el("div", { class: "alternatives", "data-testid": "alternatives" }, alternatives.map((alt) => {
      const name = alt.title || "Untitled";
      const by = [alt.artist, alt.licence].filter(Boolean).join(" · ");
      const similarity = alt.score !== undefined && alt.score !== null ? `similarity ${Number(alt.score).toFixed(2)}` : null;
      const title = [name, by, similarity].filter(Boolean).join(" · ");
      // a work of the served collection opens in the detail view; one of another free collection cannot
      const served = typeof alt.thumbnail === "string" && alt.thumbnail.startsWith("/api/artworks/");
      const picture = alt.thumbnail ? el("img", { src: alt.thumbnail, alt: name, loading: "lazy" }) : el("span", { class: "no-thumb" });
      return el("figure", { class: "alternative", "data-id": String(alt.id), title },
        served ? el("button", { type: "button", "aria-label": `Open ${name}`, onclick: () => openDetail(alt.id) }, picture) : picture,
        el("figcaption", {}, el("span", { class: "alt-title" }, name), by ? el("span", { class: "alt-by" }, by) : null));
    }));
  }

  /** The near miss of a not-registered verdict: which registered work came closest, and how far below the threshold. */
  function closestText(closest, evidence) {
    const name = closest.title || `registry work #${closest.id}`;
    const score = closest.score !== undefined && closest.score !== null ? `score ${Number(closest.score).toFixed(2)}` : null;
    const threshold = evidence && evidence.threshold !== undefined ? `threshold ${Number(evidence.threshold).toFixed(2)}` : null;
    return `closest registered work: ${name} (${[score, threshold].filter(Boolean).join(", ")}${score || threshold ? ", " : ""}below the threshold)`;
  }

  async function checkCopyright(file, query) {
    const box = $("verdict");
    box.className = "verdict info";
    box.hidden = false;
    box.replaceChildren(el("span", { class: "spinner-line" }), "Checking the copyright registry…");
    const form = new FormData();
    form.append("image", file, file.name || "upload");
    try {
      const v = await api("/api/copyright/check", form);
      if (state.query !== query) return;
      const work = v.work || {};
      const workName = work.title || (work.id !== undefined ? `registry work #${work.id}` : "a registered work");
      const details = [v.owner ? `owner: ${v.owner}` : null, work.licence ? `licence: ${work.licence}` : null,
        v.score !== null && v.score !== undefined ? `score ${Number(v.score).toFixed(2)}` : null,
        v.stage ? `matched at the ${v.stage} stage` : null].filter(Boolean).join(" · ");
      box.className = `verdict ${v.registered ? "bad" : "ok"}`;
      box.dataset.verdict = v.verdict;
      box.replaceChildren(
        el("strong", {}, v.registered ? `Registered protected work: ${workName}` : "Not in the copyright registry"),
        v.registered ? el("div", {}, details) : el("div", {}, "No registered work matches this picture."),
        !v.registered && v.closest ? el("div", { class: "small closest", "data-testid": "closest" }, closestText(v.closest, v.evidence)) : null,
        v.alternatives.length ? el("div", { class: "small", style: "margin-top:6px" }, v.registered ? "Free-to-use alternatives:" : "Similar free-to-use works:") : null,
        v.alternatives.length ? alternativeStrip(v.alternatives) : null);
    } catch (err) {
      if (state.query !== query) return;
      box.className = "verdict info";
      box.textContent = `Copyright check failed: ${err.message}`;
    }
  }

  function handleFile(file) {
    if (!file) return;
    const limits = state.stats && state.stats.limits;
    if (file.type && !file.type.startsWith("image/")) { toast(`“${file.name}” is not an image.`); return; }
    if (limits && file.size > limits.max_upload_bytes) { toast(`That picture is larger than ${Math.round(limits.max_upload_bytes / 1048576)} MB.`); return; }
    const query = { kind: "image", file, url: URL.createObjectURL(file), uploadId: null };
    setQuery(query);
    if (offers("annotation")) annotate(file, query);
    if (offers("copyright")) checkCopyright(file, query);
  }

  // -- detail view --------------------------------------------------------------------------------
  async function openDetail(id, hit) {
    const dialog = $("detail");
    const body = $("detail-body");
    body.replaceChildren(el("div", { class: "detail-image" }), el("div", { class: "detail-info" }, el("span", { class: "muted" }, "Loading…")));
    if (!dialog.open) dialog.showModal();
    let art;
    try { art = await api(`/api/artworks/${id}`); } catch (err) {
      body.replaceChildren(el("div", { class: "detail-info" }, el("h2", {}, "Not available"), el("p", {}, err.message)));
      return;
    }
    const meta = art.metadata || {};
    const title = titleOf(meta, id);
    const shown = new Set(["title", "description"]);
    const rows = Object.entries(meta).filter(([k]) => !shown.has(k));
    if (art.width && art.height) rows.push(["size", `${art.width} × ${art.height} px`]);
    if (art.institution) rows.unshift(["institution", art.institution]);
    const current = hit || state.results.find((h) => h.id === id);
    const like = el("button", { type: "button", class: "btn", "data-like": String(id), onclick: () => toggleLike(id, meta, art.thumbnail) },
      isLiked(id) ? "♥ Liked" : "♡ Like");
    body.replaceChildren(
      el("div", { class: "detail-image" }, el("img", { src: art.image, alt: title })),
      el("div", { class: "detail-info" },
        el("h2", { id: "detail-title" }, title),
        meta.artist ? el("div", { class: "by" }, [meta.artist, meta.date].filter(Boolean).join(", ")) : null,
        meta.description ? el("p", { class: "desc" }, meta.description) : null,
        el("dl", { class: "meta" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
        current && current.aspects ? el("div", {}, el("div", { class: "small muted", style: "margin-bottom:6px" }, "Similarity to your query"), scoreBars(current.aspects, null)) : null,
        el("div", { class: "detail-actions" },
          el("button", { type: "button", class: "btn primary", "data-testid": "detail-more", onclick: () => { dialog.close(); moreLike(id, meta); } }, "More like this"),
          art.aspects.includes("style") ? el("button", { type: "button", class: "btn", onclick: () => { dialog.close(); sameStyle(id, meta); } }, "Same style") : null,
          like)));
  }

  function moreLike(id, meta) { setQuery({ kind: "id", id, meta }); }

  function sameStyle(id, meta) {
    state.weightsTouched = true;
    showWeights({ style: 1 });
    setQuery({ kind: "id", id, meta });
  }

  // -- wiring -------------------------------------------------------------------------------------
  function wire() {
    $("text-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("text-input").value.trim();
      if (text) setQuery({ kind: "text", text }); else setQuery({ kind: "browse" });
    });
    const pick = () => $("file-input").click();
    $("pick-btn").addEventListener("click", pick);
    $("choose-btn").addEventListener("click", (e) => { e.stopPropagation(); pick(); });
    $("camera-btn").addEventListener("click", (e) => { e.stopPropagation(); $("camera-input").click(); });
    for (const id of ["file-input", "camera-input"]) {
      $(id).addEventListener("change", (e) => { handleFile(e.target.files[0]); e.target.value = ""; });
    }
    const zone = $("dropzone");
    zone.addEventListener("click", pick);
    zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });

    let depth = 0;
    const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
    window.addEventListener("dragenter", (e) => { if (!hasFiles(e)) return; depth += 1; $("drop-overlay").hidden = false; zone.classList.add("over"); });
    window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) { $("drop-overlay").hidden = true; zone.classList.remove("over"); } });
    window.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
    window.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      $("drop-overlay").hidden = true;
      zone.classList.remove("over");
      handleFile(e.dataTransfer.files[0]);
    });
    document.addEventListener("paste", (e) => {
      const items = Array.from((e.clipboardData && e.clipboardData.items) || []);
      const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
      if (!item) return;
      e.preventDefault();
      handleFile(item.getAsFile());
    });

    $("weights-reset").addEventListener("click", () => {
      state.weightsTouched = false;  // the server's default mix for this kind of query
      if (state.query.kind === "browse") showWeights(state.stats ? state.stats.default_weights : {});
      else run();
    });
    $("filters-clear").addEventListener("click", () => { state.filters = {}; renderFacets(); state.browse.offset = 0; run(); });
    $("query-clear").addEventListener("click", () => { $("text-input").value = ""; setQuery({ kind: "browse" }); });
    $("more-btn").addEventListener("click", () => {
      if (state.query.kind === "browse") { state.browse.offset += PAGE; browse(true); return; }
      state.k = Math.min(state.k + PAGE, state.stats ? state.stats.limits.max_k : 200);
      search();
    });
    $("sidebar-toggle").addEventListener("click", () => {
      const open = $("sidebar").classList.toggle("open");
      $("sidebar-toggle").setAttribute("aria-expanded", String(open));
    });
    const likedPanel = (open) => { $("liked-panel").hidden = !open; $("liked-toggle").setAttribute("aria-expanded", String(open)); };
    $("liked-toggle").addEventListener("click", () => likedPanel($("liked-panel").hidden));
    $("liked-close").addEventListener("click", () => likedPanel(false));
    $("liked-clear").addEventListener("click", () => { state.liked = []; saveLiked(); });
    $("recommend-btn").addEventListener("click", () => {
      if (!state.liked.length) return;
      likedPanel(false);
      setQuery({ kind: "liked", ids: state.liked.map((x) => x.id) });
    });
    $("detail").addEventListener("click", (e) => { if (e.target === $("detail")) $("detail").close(); });
  }

  async function start() {
    wire();
    try {
      const [stats, facets] = await Promise.all([api("/api/stats"), api("/api/facets")]);
      state.stats = stats;
      state.facets = facets.facets;
      document.title = `artlens · ${stats.collection}`;
      if ($("artists-toggle")) $("artists-toggle").hidden = !offers("artists");
    } catch (err) {
      showNotice(`The collection cannot be read: ${err.message}`);
      return;
    }
    loadLiked();
    renderLiked();
    showWeights(state.stats.default_weights);
    renderSliders();
    renderFacets();
    await browse(false);
    document.body.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", start);
})();

/* "Find an artist": reference pictures (and words) ranked against the published artist profiles
   (/api/artists, /api/artists/search). Beside the search page above, sharing only the helpers at the top. */
(() => {
  const MAX_REFS = 8;
  const refs = [];  // {file, url}
  let available = false;

  const status = (text) => { $("artists-status").textContent = text; $("artists-status").hidden = !text; };
  const ready = () => { $("artists-go").disabled = !available || (!refs.length && !$("artists-text").value.trim()); };

  function renderRefs() {
    $("artists-refs").replaceChildren(...refs.map((r, i) => el("figure", {},
      el("img", { src: r.url, alt: `Reference ${i + 1}` }),
      el("figcaption", { text: `ref ${i + 1}` }),
      el("button", { type: "button", "aria-label": `Remove reference ${i + 1}`, onclick: () => {
        URL.revokeObjectURL(r.url); refs.splice(i, 1); renderRefs(); } }, "×"))));
    ready();
  }

  function addFiles(files) {
    for (const file of Array.from(files || [])) {
      if (!file.type.startsWith("image/")) continue;
      if (refs.length >= MAX_REFS) { status(`At most ${MAX_REFS} reference pictures.`); break; }
      refs.push({ file, url: URL.createObjectURL(file) });
    }
    renderRefs();
  }

  function refName(answer, index) {
    const ref = answer.references[index] || {};
    return ref.kind === "text" ? `“${ref.text}”` : `ref ${index + 1}`;
  }

  /** Width of a score's bar: the score itself (a similarity, at most 1), as a share of the track. */
  function scoreWidth(score) {
    return `${(100 * Math.min(1, Math.max(0, score))).toFixed(1)}%`;
  }

  function renderResults(answer) {
    $("artists-results").replaceChildren(...answer.results.map((r, i) => el("li", { "data-artist": r.artist },
      el("span", { class: "rank", text: String(i + 1) }),
      el("span", { class: "name", text: r.artist }),
      el("span", { class: "score", title: "mean over references of the soft maximum (temperature 0.1) of the similarities to the artist's prototypes, weighted by their works", text: r.score.toFixed(3) }),
      el("span", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${scoreWidth(r.score)}` })),
      el("span", { class: "why", text: `${r.works} works · ` + r.matches.map((m) =>
        `${refName(answer, m.reference)} → style ${m.prototype + 1} (${m.prototype_works} works, ${m.similarity.toFixed(2)})`).join("; ") }),
    )));
    status(answer.results.length ? "" : "No artist profiles to rank.");
  }

  async function find(event) {
    event.preventDefault();
    const form = new FormData();
    refs.forEach((r) => form.append("image", r.file, r.file.name || "reference.png"));
    const text = $("artists-text").value.trim();
    if (text) form.append("text", text);
    form.append("k", "5");
    $("artists-go").disabled = true;
    status("Matching your references with the artists' profiles…");
    try {
      renderResults(await api("/api/artists/search", form));
    } catch (err) {
      $("artists-results").replaceChildren();
      status(err.hint ? `${err.message} (${err.hint})` : err.message);
    } finally {
      ready();
    }
  }

  async function open() {
    $("artists-dialog").showModal();
    try {
      const info = await api("/api/artists");
      available = info.available;
      $("artists-form").hidden = !available;
      $("artists-text").hidden = !info.text;
      status(available ? `${info.artists.length} artists have published a style profile.` :
        `No artist profiles here yet${info.hint ? ` (${info.hint})` : ""}.`);
    } catch (err) {
      available = false;
      status(`Artist profiles cannot be read: ${err.message}`);
    }
    ready();
  }

  function wire() {
    if (!$("artists-toggle")) return;
    $("artists-toggle").addEventListener("click", open);
    $("artists-files").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
    $("artists-text").addEventListener("input", ready);
    $("artists-form").addEventListener("submit", find);
    $("artists-reset").addEventListener("click", () => {
      refs.splice(0).forEach((r) => URL.revokeObjectURL(r.url));
      $("artists-text").value = "";
      $("artists-results").replaceChildren();
      renderRefs();
    });
    $("artists-dialog").addEventListener("click", (e) => { if (e.target === $("artists-dialog")) $("artists-dialog").close(); });
  }

  document.addEventListener("DOMContentLoaded", wire);
})();

/* Near-duplicate review (/api/duplicates): groups of works that are copies of each other, side by side
   with their scores, re-grouped as the threshold slider moves (the server keeps the candidate pairs). */
(() => {
  let timer = null;
  let asked = 0;

  const status = (text) => { $("duplicates-status").textContent = text; $("duplicates-status").hidden = !text; };

  function renderGroups(answer) {
    $("duplicate-groups").replaceChildren(...answer.groups.map((g, i) => el("li", { class: "duplicate-group", "data-ids": g.ids.join(",") },
      el("div", { class: "group-head" }, `Group ${i + 1} · ${g.ids.length} works · best link ${g.pairs.length ? Number(g.pairs[0][2]).toFixed(2) : "–"}`),
      el("div", { class: "group-works" }, g.works.map((w) => el("figure", { class: "duplicate-work", "data-id": String(w.id) },
        el("img", { src: w.thumbnail, alt: w.title || `work #${w.id}`, loading: "lazy" }),
        el("figcaption", {}, el("span", { class: "dup-title" }, w.title || `work #${w.id}`),
          el("span", { class: "dup-score", "data-testid": "duplicate-score" }, Number(w.score).toFixed(2)))))))));
    const shown = answer.groups.length < answer.groups_total ? ` (the first ${answer.groups.length} shown)` : "";
    status(answer.groups_total ? `${answer.groups_total} group${answer.groups_total === 1 ? "" : "s"} of copies among ${answer.works} works at threshold ${answer.threshold.toFixed(2)}${shown}.`
      : `No copies among ${answer.works} works at threshold ${answer.threshold.toFixed(2)}.`);
  }

  async function load() {
    const threshold = Number($("duplicates-threshold").value);
    $("duplicates-threshold-value").textContent = threshold.toFixed(2);
    const mine = ++asked;
    try {
      const answer = await api(`/api/duplicates?threshold=${threshold.toFixed(2)}`);
      if (mine !== asked) return;  // the slider moved on meanwhile
      $("duplicates-threshold").min = String(answer.floor);
      renderGroups(answer);
    } catch (err) {
      if (mine !== asked) return;
      $("duplicate-groups").replaceChildren();
      status(err.hint ? `${err.message} (${err.hint})` : err.message);
    }
  }

  let opened = false;
  async function open() {
    $("duplicates-dialog").showModal();
    if (!opened) {  // the first answer says the calibrated default: start the slider there
      opened = true;
      status("Reviewing the collection…");
      try {
        const first = await api("/api/duplicates");
        $("duplicates-threshold").min = String(first.floor);
        $("duplicates-threshold").value = String(first.default_threshold);
        $("duplicates-threshold-value").textContent = first.default_threshold.toFixed(2);
        renderGroups(first);
        return;
      } catch (err) {
        opened = false;
        status(err.hint ? `${err.message} (${err.hint})` : err.message);
        return;
      }
    }
    load();
  }

  function wire() {
    if (!$("duplicates-open")) return;
    $("duplicates-open").addEventListener("click", open);
    $("duplicates-threshold").addEventListener("input", () => {
      $("duplicates-threshold-value").textContent = Number($("duplicates-threshold").value).toFixed(2);
      clearTimeout(timer);
      timer = setTimeout(load, 150);
    });
    $("duplicates-dialog").addEventListener("click", (e) => { if (e.target === $("duplicates-dialog")) $("duplicates-dialog").close(); });
  }

  document.addEventListener("DOMContentLoaded", wire);
})();
