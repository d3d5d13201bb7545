/* An offline reference of the REST API, rendered from /openapi.json (no external code). */
"use strict";

(() => {
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  let schema = null;
  const resolve = (s) => {
    let seen = 0;
    while (s && s.$ref && seen++ < 10) s = s.$ref.split("/").slice(1).reduce((o, k) => o[k], schema);
    return s || {};
  };

  function typeOf(s) {
    s = resolve(s);
    if (s.anyOf) return s.anyOf.map(typeOf).filter((t) => t !== "null").join(" | ");
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (s.type === "array") return `${typeOf(s.items)}[]`;
    if (s.format === "binary" || s.contentMediaType) return "file";
    const bounds = [s.minimum !== undefined ? `≥ ${s.minimum}` : null, s.maximum !== undefined ? `≤ ${s.maximum}` : null,
      s.maxLength !== undefined ? `≤ ${s.maxLength} chars` : null].filter(Boolean).join(", ");
    return (s.type || (s.properties ? "object" : "any")) + (bounds ? ` (${bounds})` : "");
  }

  function fieldRows(fields) {
    return el("table", { class: "fields" }, el("tbody", {}, fields.map((f) => el("tr", {},
      el("td", {}, el("code", {}, f.name), f.required ? el("span", { class: "req" }, " required") : null),
      el("td", { class: "muted" }, f.where || ""),
      el("td", {}, el("code", {}, f.type)),
      el("td", {}, f.description || "")))));
  }

  function example(method, path, op) {
    const body = op.requestBody && resolve((Object.values(op.requestBody.content)[0] || {}).schema);
    const parts = [`curl -X ${method.toUpperCase()} http://127.0.0.1:8000${path.replace(/\{(\w+)\}/g, "1")}`];
    if (body && body.properties) {
      if ("image" in body.properties) parts.push("-F image=@picture.jpg");
      if (path === "/api/search") parts.push("-F k=10 -F weights=content=0.5,style=0.5 -F filters=style=wave");
    }
    return el("pre", {}, el("code", {}, parts.join(" ")));
  }

  function operation(path, method, op) {
    const fields = (op.parameters || []).map((p) => ({ name: p.name, where: p.in, required: p.required, type: typeOf(p.schema), description: p.description || (p.schema && p.schema.description) }));
    if (op.requestBody) {
      const [ctype, content] = Object.entries(op.requestBody.content)[0];
      const body = resolve(content.schema);
      for (const [name, prop] of Object.entries(body.properties || {})) {
        fields.push({ name, where: ctype.includes("multipart") ? "form" : "body", required: (body.required || []).includes(name),
          type: typeOf(prop), description: resolve(prop).description || prop.description });
      }
    }
    const responses = Object.entries(op.responses || {}).map(([code, r]) => el("li", {}, el("code", {}, code), " ", r.description || ""));
    return el("section", { class: "panel op", id: `${method}-${path}` },
      el("h2", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path)),
      op.summary ? el("p", {}, el("strong", {}, op.summary)) : null,
      op.description ? el("p", { class: "desc" }, op.description) : null,
      fields.length ? fieldRows(fields) : null,
      example(method, path, op),
      el("ul", { class: "responses" }, responses));
  }

  async function start() {
    const main = document.getElementById("docs");
    try {
      schema = await (await fetch("/openapi.json")).json();
    } catch (err) {
      main.replaceChildren(el("p", {}, `The schema cannot be read: ${err.message}`));
      return;
    }
    const ops = [];
    for (const [path, methods] of Object.entries(schema.paths)) for (const [method, op] of Object.entries(methods)) ops.push(operation(path, method, op));
    main.replaceChildren(
      el("h1", {}, `${schema.info.title} ${schema.info.version}`),
      el("p", { class: "desc" }, schema.info.description || ""),
      ...ops);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
