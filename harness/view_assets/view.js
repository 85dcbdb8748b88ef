// mclbench's run explorer (harness/view.py). Every text from the run goes in through
// textContent or an attribute value: candidates and references are data, never markup.
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const PAGE = 25;  // inputs listed at a time
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const state = {task: 0, seed: null, view: "overview", input: null, page: 0, hidden: new Set(["cost"]),
               sort: null, a: null, b: null, metric: null, filter: "all"};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const svgEl = (tag, attrs) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};
const task = () => DATA.tasks[state.task];
const run = () => (task().runs[String(state.seed)] || {});
const fmt = (x) => x === null || x === undefined ? "n/a"
  : Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3);

function modeColour(mode) {
  const modes = [...new Set(task().inputs.flatMap((i) => i.modes || []).filter((m) => m !== null))].sort();
  return PALETTE[modes.indexOf(mode) % PALETTE.length] || "#777";
}

function go(changes) {
  Object.assign(state, changes);
  render();
}

// ------------------------------------------------------------------ navigation
function nav() {
  const t = task();
  if (!t.seeds.includes(state.seed)) state.seed = t.seeds[0];
  const tabs = ["overview", "inputs", "compare"].map((v) => el("button", {
    class: "tab" + (state.view === v || (v === "inputs" && state.view === "input") ? " on" : ""),
    "data-view": v, onclick: () => go({view: v})}, v));
  const taskSelect = el("select", {id: "task", onchange: (e) => go({task: +e.target.value, input: null, page: 0,
    sort: null, a: null, b: null, metric: null})},
    DATA.tasks.map((x, i) => el("option", {value: i, selected: i === state.task}, x.name)));
  const seedSelect = el("select", {id: "seed", onchange: (e) => go({seed: +e.target.value})},
    t.seeds.map((s) => el("option", {value: s, selected: s === state.seed}, "seed " + s)));
  document.getElementById("nav").replaceChildren(el("label", {}, "task ", taskSelect),
    el("label", {}, seedSelect), ...tabs);
}

// ------------------------------------------------------------------ overview
function overview() {
  const t = task();
  const groups = [...new Set(t.columns.map((c) => c.group))];
  const toggles = el("div", {class: "groups"}, "columns: ", groups.map((g) => el("label", {},
    el("input", {type: "checkbox", "data-group": g, checked: !state.hidden.has(g), onchange: (e) => {
      if (e.target.checked) state.hidden.delete(g); else state.hidden.add(g);
      render();
    }}), " " + g)));
  const cols = t.columns.filter((c) => !state.hidden.has(c.group));
  const best = {};
  for (const c of cols) {
    const vals = t.methods.map((m) => ((t.rows[m] || {})[c.name] || [null])[0]).filter((v) => v !== null);
    if (c.higher !== null && vals.length) best[c.name] = c.higher ? Math.max(...vals) : Math.min(...vals);
  }
  let methods = [...t.methods];
  if (state.sort) {
    const {col, dir} = state.sort;
    const value = (m) => ((t.rows[m] || {})[col] || [NaN])[0];
    methods.sort((x, y) => dir * ((value(x) - value(y)) || 0));
  }
  const groupRow = el("tr", {class: "group-row"}, el("th", {}));
  for (const g of groups) {
    const n = cols.filter((c) => c.group === g).length;
    if (n) groupRow.append(el("th", {colspan: n}, g));
  }
  const head = el("tr", {}, el("th", {}, "method"), cols.map((c) => el("th", {
    title: c.description, class: state.sort && state.sort.col === c.name ? "sorted" : null, "data-col": c.name,
    onclick: () => go({sort: {col: c.name, dir: state.sort && state.sort.col === c.name ? -state.sort.dir
      : (c.higher === false ? 1 : -1)}})}, c.name + (c.higher === true ? " ↑" : c.higher === false ? " ↓" : ""))));
  const body = methods.map((m) => el("tr", {"data-method": m}, el("th", {}, m), cols.map((c) => {
    const v = (t.rows[m] || {})[c.name];
    if (!v) return el("td", {}, "–");
    const [mean, std, seeds, , p] = v;
    const isBest = best[c.name] !== undefined && mean !== null && mean === best[c.name];
    const dagger = p !== null && p >= DATA.alpha && !isBest;
    const title = p === null ? (isBest ? "best of the column" : null)
      : `p = ${p.toPrecision(2)} against the column's best (paired bootstrap over inputs, seeds pooled)`;
    return el("td", {class: isBest ? "best" : null, title, "data-p": p}, fmt(mean),
      std !== null && seeds > 1 ? " ± " + fmt(std) : "", dagger ? "†" : "");
  })));
  const table = el("table", {class: "leaderboard"}, el("thead", {}, groupRow, head), el("tbody", {}, body));
  const legend = el("p", {class: "provenance"}, `mean ± std over seeds ${t.seeds.join(", ")}; bold: the `
    + `column's best; †: not significantly worse than it (p ≥ ${DATA.alpha}); hover a value for its p-value, `
    + "a header for its definition; click a header to sort.");
  const figures = el("div", {class: "figures"}, t.figures.map((f) => el("img", {src: f.src, alt: f.name, title: f.name})));
  return [el("h2", {}, t.name), toggles, table, legend, figures];
}

// ------------------------------------------------------------------ inputs
function inputsList() {
  const t = task();
  const start = state.page * PAGE;
  const shown = t.inputs.slice(start, start + PAGE);
  const rows = shown.map((inp) => el("tr", {"data-id": inp.id, onclick: () => go({view: "input", input: inp.id})},
    el("td", {}, inp.id), el("td", {}, inp.source !== null && inp.source !== undefined ? inp.source
      : inp.media ? "(" + inp.media.kind + ")" : ""), el("td", {}, inp.references[0] || "")));
  const pages = Math.ceil(t.inputs.length / PAGE);
  const pager = el("div", {class: "pager"},
    el("button", {disabled: state.page === 0, onclick: () => go({page: state.page - 1})}, "‹ previous"),
    `inputs ${start + 1}–${Math.min(start + PAGE, t.inputs.length)} of ${t.inputs.length}`,
    el("button", {disabled: state.page >= pages - 1, onclick: () => go({page: state.page + 1})}, "next ›"));
  return [el("h2", {}, t.name + ": inputs"), pager,
          el("table", {class: "list"}, el("tbody", {}, rows))];
}

function modeTag(mode) {
  return mode === null || mode === undefined ? null
    : el("span", {class: "mode", style: "background:" + modeColour(mode)}, mode);
}

function inputView() {
  const t = task();
  const inp = t.inputs.find((i) => i.id === state.input);
  if (!inp) return [el("p", {}, "no such input")];
  const parts = [el("h2", {}, t.name + ": " + inp.id)];
  if (inp.media && inp.media.kind === "image") parts.push(el("img", {class: "photo", src: inp.media.src, alt: inp.id}));
  if (inp.media && inp.media.kind === "audio") parts.push(el("audio", {controls: true, src: inp.media.src}));
  if (inp.source !== null && inp.source !== undefined) parts.push(el("div", {class: "source"}, inp.source));
  parts.push(el("h3", {}, "references"), el("ol", {class: "refs", start: 0}, inp.references.map((r, j) =>
    el("li", {}, r, modeTag(inp.modes ? inp.modes[j] : null)))));
  const cells = run();
  const blocks = t.methods.filter((m) => cells[m]).map((m) => {
    const cell = cells[m];
    const i = cell.ids.indexOf(inp.id);
    if (i < 0) return null;
    const seen = new Set();
    const items = cell.candidates[i].map((c, n) => {
      const [score, ref] = cell.scored[i][n];
      const dup = seen.has(c);
      seen.add(c);
      return el("li", {class: "cand"}, el("span", {class: "text"}, c),
        el("span", {class: "score", title: "sentence BLEU (" + t.tokenize + ") against all references; → the "
          + "reference it matches best"}, `BLEU ${score.toFixed(1)} → ref ${ref}`),
        modeTag(inp.modes ? inp.modes[ref] : null), dup ? el("span", {class: "dup"}, "duplicate") : null);
    });
    return el("div", {class: "method", "data-method": m}, el("h3", {}, m),
      el("ol", {class: "cands", start: 0}, items), disagreement(m, inp.id, i));
  });
  parts.push(el("h3", {}, `candidates, seed ${state.seed}`), el("div", {class: "methods"}, blocks));
  return parts;
}

function disagreement(method, id, i) {
  // another seed of this method gave other candidates for this input
  const t = task();
  const here = run()[method].metrics["max sentence BLEU"][i];
  const others = t.seeds.filter((s) => s !== state.seed).map((s) => {
    const cell = (t.runs[String(s)] || {})[method];
    const j = cell ? cell.ids.indexOf(id) : -1;
    if (j < 0) return null;
    const same = JSON.stringify(cell.candidates[j]) === JSON.stringify(run()[method].candidates[i]);
    return same ? null : `seed ${s}: other candidates (max BLEU ${cell.metrics["max sentence BLEU"][j].toFixed(1)}`
      + ` vs ${here.toFixed(1)})`;
  }).filter(Boolean);
  return others.length ? el("div", {class: "disagree"}, "seeds disagree — " + others.join("; ")) : null;
}

// ------------------------------------------------------------------ compare
const FILTERS = {  // (A's cell, its row, B's cell, its row, metric) -> shown
  all: ["all inputs", () => true],
  "a-more-modes": ["A covers more modes than B",
    (a, i, b, j) => (a.metrics["modes covered"] || [])[i] > (b.metrics["modes covered"] || [])[j]],
  "a-more-refs": ["A covers more references than B",
    (a, i, b, j) => a.metrics["refs covered"][i] > b.metrics["refs covered"][j]],
  "a-identical": ["every candidate of A identical", (a, i) => new Set(a.candidates[i]).size === 1],
  "a-better": ["A above B on the metric", (a, i, b, j, m) => a.metrics[m][i] > b.metrics[m][j]],
};

function compare() {
  const t = task();
  const cells = run();
  const methods = t.methods.filter((m) => cells[m]);
  if (!methods.includes(state.a)) state.a = methods[0];
  if (!methods.includes(state.b)) state.b = methods[Math.min(1, methods.length - 1)];
  const metrics = Object.keys(cells[state.a].metrics).filter((m) => m in cells[state.b].metrics);
  if (!metrics.includes(state.metric)) state.metric = metrics[0];
  const pick = (id, value, options, key) => el("select", {id, onchange: (e) => go({[key]: e.target.value})},
    options.map(([v, label]) => el("option", {value: v, selected: v === value}, label)));
  const controls = el("div", {class: "controls"},
    el("label", {}, "A ", pick("method-a", state.a, methods.map((m) => [m, m]), "a")),
    el("label", {}, "B ", pick("method-b", state.b, methods.map((m) => [m, m]), "b")),
    el("label", {}, "metric ", pick("metric", state.metric, metrics.map((m) => [m, m]), "metric")),
    el("label", {}, "show ", pick("filter", state.filter, Object.entries(FILTERS).map(([k, [l]]) => [k, l]), "filter")));
  const a = cells[state.a], b = cells[state.b], m = state.metric;
  const points = [];
  a.ids.forEach((id, i) => {
    const j = b.ids.indexOf(id);
    if (j < 0 || a.metrics[m][i] === null || b.metrics[m][j] === null) return;
    if (FILTERS[state.filter][1](a, i, b, j, m)) points.push([id, a.metrics[m][i], b.metrics[m][j]]);
  });
  const size = 420, pad = 36;
  const all = points.flatMap((p) => [p[1], p[2]]);
  const lo = Math.min(0, ...all), hi = Math.max(1, ...all);
  const scale = (v) => pad + (v - lo) / (hi - lo) * (size - 2 * pad);
  const svg = svgEl("svg", {width: size, height: size, viewBox: `0 0 ${size} ${size}`});
  svg.append(svgEl("line", {x1: scale(lo), y1: size - scale(lo), x2: scale(hi), y2: size - scale(hi), stroke: "#bbb"}));
  for (const [v, anchor] of [[lo, "start"], [hi, "end"]]) {
    const tx = svgEl("text", {x: scale(v), y: size - 8, "font-size": 11, "text-anchor": anchor});
    tx.textContent = fmt(v);
    svg.append(tx);
  }
  for (const [label, x, y, turn] of [[state.a + " →", size / 2, size - 22, 0], [state.b + " →", 14, size / 2, -90]]) {
    const tx = svgEl("text", {x, y, "font-size": 12, "text-anchor": "middle",
                              transform: turn ? `rotate(${turn} ${x} ${y})` : ""});
    tx.textContent = label;
    svg.append(tx);
  }
  const jitter = (k) => ((k * 7919) % 13 - 6) * 0.6;  // discrete metrics: keep equal points apart
  points.forEach(([id, x, y], k) => {
    const c = svgEl("circle", {cx: scale(x) + jitter(k), cy: size - scale(y) + jitter(k + 5), r: 5,
                              fill: x > y ? PALETTE[0] : x < y ? PALETTE[1] : "#888", "data-id": id});
    const tip = svgEl("title", {});
    tip.textContent = `${id}: A ${fmt(x)}, B ${fmt(y)}`;
    c.append(tip);
    c.addEventListener("click", () => go({view: "input", input: id}));
    svg.append(c);
  });
  const wins = points.filter((p) => p[1] > p[2]).length, losses = points.filter((p) => p[1] < p[2]).length;
  const summary = el("div", {}, el("p", {}, `${points.length} inputs shown (seed ${state.seed}); A above B on `
    + `${wins}, below on ${losses}, level on ${points.length - wins - losses}.`),
    el("p", {class: "provenance"}, `x: ${state.a}, y: ${state.b}; blue: A higher, red: B higher. `
    + "Click a point to open its input. Per-input numbers: sentence BLEU (" + t.tokenize + ") of each "
    + "candidate, its best-matched reference (as refs_covered and modes_covered match)."));
  return [el("h2", {}, t.name + ": compare two methods"), controls, el("div", {class: "compare"}, svg, summary)];
}

// ------------------------------------------------------------------ page
function render() {
  nav();
  const views = {overview, inputs: inputsList, input: inputView, compare};
  document.getElementById("main").replaceChildren(...views[state.view]());
  document.body.dataset.view = state.view;
}

document.getElementById("provenance").replaceChildren(...DATA.provenance.map((line) => el("div", {}, line)));
render();
