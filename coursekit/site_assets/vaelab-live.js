/* The live views of the VAE Loss Lab course site (written by coursekit/site.py).

   Plain JavaScript, no libraries, nothing fetched: each view's numbers come in a JSON block inside the
   page and its pictures are files next to it, so the pages work from file:// and from any static server.

   - beta-explorer: a slider over the β values of a trained sweep swaps the precomputed panel and readout.
   - kl-explorer: sliders for μ and σ (or log σ²) redraw q = N(μ, σ²) against the prior N(0, 1) and the
     four terms of the KL, computed here with the formulas of vaeutils.widgets.kl.kl_explorer_state and
     printed with Python's format() rules, so the page shows the digits the notebook shows.
*/
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  // The Chinese edition's pages (<html lang="zh-CN">) show the views' own words in Chinese; what the views
  // take from the notebook (slider labels, the β explorer's numbers) comes translated already.
  const ZH = (document.documentElement.lang || "").toLowerCase().startsWith("zh");
  const WORDS = {
    live: ["live view: it moves in this page, no Python needed", "实时视图：可直接在网页中拖动，无需运行 Python"],
    nats: ["nats", "奈特"],
    bars: ["nats (−½ × term)", "奈特（−½ × 项）"],
    figure: ["q and the prior; the terms of the KL", "q 与先验；KL 的各项"],
    peak: ["q peaks at {0} (off the scale)", "q 的峰值为 {0}（超出坐标范围）"],
    failed: ["this view could not start ({0}); what follows is a snapshot", "此视图无法启动（{0}）；下面是快照"],
  };
  function say(key, ...args) {
    return WORDS[key][ZH ? 1 : 0].replace(/\{(\d)\}/g, (_, i) => args[Number(i)]);
  }
  const LIVE_NOTE = say("live");

  // ------------------------------------------------------------ Python's format() for .Nf and .Ng specs

  // The decimal digits of |x| with exactly 100 after the point: exact for every double the views show.
  function digitsOf(x) {
    const s = Math.abs(x).toFixed(100);
    const point = s.indexOf(".");
    return { digits: s.slice(0, point) + s.slice(point + 1), intLen: point };
  }

  // The first n digits of a digit string, rounded half to even as Python does (may gain a leading 1).
  function roundAt(d, n) {
    const head = d.slice(0, n), next = d.charAt(n), rest = d.slice(n + 1);
    const odd = n > 0 && "13579".includes(head.charAt(n - 1));
    const up = next > "5" || (next === "5" && (/[1-9]/.test(rest) || odd));
    if (!up) return head;
    const a = head.split("");
    let i = a.length - 1;
    while (i >= 0 && a[i] === "9") { a[i] = "0"; i -= 1; }
    if (i < 0) a.unshift("1"); else a[i] = String(Number(a[i]) + 1);
    return a.join("");
  }

  function stripZeros(s) {
    return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
  }

  // format(x, spec) for spec "[+].<n>f" or "[+].<n>g", the specs of the explorers' readouts.
  function pyFormat(x, spec) {
    const m = /^(\+?)\.(\d+)([fg])$/.exec(spec);
    if (!m) return String(x);
    if (Number.isNaN(x)) return (m[1] ? "+" : "") + "nan";
    const sign = x < 0 || Object.is(x, -0) ? "-" : m[1];
    if (!Number.isFinite(x)) return sign + "inf";
    const prec = Number(m[2]);
    const { digits, intLen } = digitsOf(x);
    if (m[3] === "f") {
      const r = roundAt(digits, intLen + prec);
      const whole = r.slice(0, r.length - prec).replace(/^0+(?=\d)/, "") || "0";
      return sign + whole + (prec ? "." + r.slice(r.length - prec) : "");
    }
    const p = Math.max(prec, 1);
    const first = digits.search(/[1-9]/);
    if (first < 0) return sign + "0";
    let sig = roundAt(digits.slice(first), p);
    let exp = intLen - 1 - first;
    if (sig.length > p) { exp += 1; sig = sig.slice(0, p); }
    sig = sig.padEnd(p, "0");
    let out;
    if (exp >= -4 && exp < p) {
      out = exp >= 0 ? sig.slice(0, exp + 1) + "." + sig.slice(exp + 1) : "0." + "0".repeat(-exp - 1) + sig;
      out = stripZeros(out);
    } else {
      out = stripZeros(sig.charAt(0) + "." + sig.slice(1)) + "e" + (exp < 0 ? "-" : "+") +
        String(Math.abs(exp)).padStart(2, "0");
    }
    return sign + out;
  }

  // ------------------------------------------------------------ small DOM helpers

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A slider as ipywidgets draws one: positions 0..n, where position k is min + k·step and the last
  // position is max itself (a range that is not a whole number of steps still reaches its end).
  function gridOf(spec) {
    const span = (spec.max - spec.min) / spec.step;
    const n = Math.abs(span - Math.round(span)) < 1e-9 ? Math.round(span) : Math.ceil(span);
    const at = (k) => (k >= n ? spec.max : Number((spec.min + k * spec.step).toFixed(12)));
    const nearest = (v) => Math.min(n, Math.max(0, Math.round((v - spec.min) / spec.step)));
    return { n, at, nearest };
  }

  function sliderRow(label, n, position) {
    const row = el("div", { class: "vaelab-live-ctl" });
    const input = el("input", { type: "range", min: "0", max: String(n), step: "1", value: String(position),
      "aria-label": label });
    const readout = el("output", { class: "vaelab-readout" });
    row.append(el("label", {}, label), input, readout);
    return { row, input, readout };
  }

  // ------------------------------------------------------------ the β explorer

  function betaExplorer(root, view, cfg) {
    const last = cfg.labels.length - 1;
    const slider = sliderRow(cfg.description || "β", last, cfg.start);
    slider.input.classList.add("vaelab-beta-slider");
    const info = el("div", { class: "vaelab-beta-readout" });
    const image = el("img", { class: "vaelab-beta-panel", alt: "the β explorer's panel for the chosen β" });
    // Decoded once up front, so a move only swaps a picture the browser already holds.
    const preload = cfg.panels.map((src) => {
      const im = new Image();
      im.src = src;
      im.decode().catch(() => {});  // a missing file shows as a broken picture, not as an error here
      return im;
    });
    root.vaelabPreload = preload;
    function show(i) {
      image.src = cfg.panels[i];
      info.innerHTML = cfg.info[i];
      slider.readout.textContent = cfg.labels[i];
      root.dataset.index = String(i);
      root.dataset.beta = String(cfg.betas[i]);
    }
    slider.input.addEventListener("input", () => show(Number(slider.input.value)));
    view.append(slider.row, info, image);
    show(cfg.start);
  }

  // ------------------------------------------------------------ the KL explorer

  const SQRT_2PI = Math.sqrt(2.0 * Math.PI);
  const TERMS = ["one", "logvar", "neg_var", "neg_mu_sq"];
  const BAR_COLORS = ["#999999", "#ff7f0e", "#2ca02c", "#d62728", "#1f77b4"];  // matplotlib 0.6, C1, C2, C3, C0

  // kl_explorer_state(mu, sigma=...) or (mu, logvar=...): give null for the one not used.
  function klState(mu, sigma, logvar) {
    if (sigma !== null) logvar = 2.0 * Math.log(sigma); else sigma = Math.exp(0.5 * logvar);
    const terms = { one: 1.0, logvar: logvar, neg_var: -Math.exp(logvar), neg_mu_sq: -(mu * mu) };
    return {
      mu, sigma, logvar,
      kl: 0.5 * (mu * mu + Math.expm1(logvar) - logvar),  // losses.kl_per_dim
      contributions: TERMS.map((k) => -0.5 * terms[k]),
    };
  }

  function snap(value, levels) {
    for (const level of levels) if (value <= level) return level;
    const top = levels[levels.length - 1];
    return top * 2.0 ** Math.ceil(Math.log2(value / top));
  }

  function barLimits(heights, levels) {  // widgets.kl._bar_limits
    const hi = snap(1.12 * Math.max(0.0, ...heights), levels);
    let lo = -Math.max(1.0, 0.3 * hi);
    const lowest = Math.min(0.0, ...heights);
    if (lowest < 0.8 * lo) lo = -snap(1.3 * -lowest, levels);
    return [lo, hi];
  }

  function niceTicks(lo, hi, count) {
    const raw = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Number(t.toFixed(10)));
    return ticks;
  }

  function axes(parent, box, xlim, ylim, xticks, yticks, xlabel, ylabel) {
    const [x0, y0, x1, y1] = box;
    const sx = (v) => x0 + (v - xlim[0]) / (xlim[1] - xlim[0]) * (x1 - x0);
    const sy = (v) => y1 - (v - ylim[0]) / (ylim[1] - ylim[0]) * (y1 - y0);
    const g = svg("g", { class: "vaelab-axes" });
    g.append(svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: "#000",
      "stroke-width": 0.8 }));
    for (const [v, label] of xticks) {
      g.append(svg("line", { x1: sx(v), x2: sx(v), y1: y1, y2: y1 + 4, stroke: "#000" }));
      g.append(svg("text", { x: sx(v), y: y1 + 15, "text-anchor": "middle", class: "tick" }, label));
    }
    for (const v of yticks) {
      g.append(svg("line", { x1: x0 - 4, x2: x0, y1: sy(v), y2: sy(v), stroke: "#000" }));
      g.append(svg("text", { x: x0 - 6, y: sy(v) + 3.5, "text-anchor": "end", class: "tick" }, String(v)));
    }
    if (xlabel) g.append(svg("text", { x: (x0 + x1) / 2, y: y1 + 30, "text-anchor": "middle" }, xlabel));
    g.append(svg("text", { x: 0, y: 0, "text-anchor": "middle",
      transform: `translate(${x0 - 34},${(y0 + y1) / 2}) rotate(-90)` }, ylabel));
    parent.append(g);
    return { sx, sy, g };
  }

  function klExplorer(root, view, cfg) {
    const [width, height] = cfg.size_px;
    const zr = cfg.z_range, ymax = cfg.density_ymax;
    const grids = { mu: gridOf(cfg.mu), sigma: gridOf(cfg.sigma), logvar: gridOf(cfg.logvar) };
    const value = { mu: cfg.mu.value, sigma: cfg.sigma.value, logvar: cfg.logvar.value };
    let useLogvar = cfg.use_logvar;
    // The σ slider moves in log10 σ, as ipywidgets' FloatLogSlider does.
    const logOf = (s) => Math.log(s) / Math.log(cfg.sigma.base);
    const rows = {
      mu: sliderRow(cfg.mu.label, grids.mu.n, grids.mu.nearest(value.mu)),
      sigma: sliderRow(cfg.sigma.label, grids.sigma.n, grids.sigma.nearest(logOf(value.sigma))),
      logvar: sliderRow(cfg.logvar.label, grids.logvar.n, grids.logvar.nearest(value.logvar)),
    };
    for (const [name, row] of Object.entries(rows)) row.input.classList.add(`vaelab-kl-${name}`);
    const toggle = el("input", { type: "checkbox", class: "vaelab-kl-toggle" });
    toggle.checked = useLogvar;
    const toggleRow = el("label", { class: "vaelab-live-ctl" });
    toggleRow.append(toggle, document.createTextNode(" " + cfg.toggle_label));
    const controls = el("div", { class: "vaelab-live-col" });
    controls.append(rows.mu.row, rows.sigma.row, rows.logvar.row, toggleRow);
    const readout = el("div", { class: "vaelab-kl-readout" });
    const top = el("div", { class: "vaelab-live-row" });
    top.append(controls, readout);

    const pic = svg("svg", { class: "vaelab-kl-figure", viewBox: `0 0 ${width} ${height}`, width: width,
      height: height, role: "img", "aria-label": say("figure") });
    pic.append(svg("rect", { x: 0, y: 0, width: width, height: height, fill: "#fff" }));
    // left: the densities
    const dBox = [48, 30, 0.52 * width, height - 40];
    const zTicks = niceTicks(zr[0], zr[1], 8).map((t) => [t, String(t)]);
    const d = axes(pic, dBox, zr, [0, ymax], zTicks, niceTicks(0, ymax, 6), "z", "density");
    const clip = svg("clipPath", { id: `${root.id}-clip` });
    clip.append(svg("rect", { x: dBox[0], y: dBox[1], width: dBox[2] - dBox[0], height: dBox[3] - dBox[1] }));
    pic.append(clip);
    const curves = svg("g", { "clip-path": `url(#${root.id}-clip)` });
    const priorLine = svg("polyline", { fill: "none", stroke: "#595959", "stroke-width": 2,
      "stroke-dasharray": "7 3", class: "vaelab-kl-prior" });
    const qLine = svg("polyline", { fill: "none", stroke: "#1f77b4", "stroke-width": 2, class: "vaelab-kl-q" });
    curves.append(priorLine, qLine);
    pic.append(curves);
    const legend = svg("g", { class: "legend" });
    legend.append(svg("line", { x1: dBox[0] + 8, x2: dBox[0] + 30, y1: dBox[1] + 14, y2: dBox[1] + 14,
      stroke: "#595959", "stroke-width": 2, "stroke-dasharray": "7 3" }));
    legend.append(svg("text", { x: dBox[0] + 36, y: dBox[1] + 18 }, "prior p = N(0, 1)"));
    legend.append(svg("line", { x1: dBox[0] + 8, x2: dBox[0] + 30, y1: dBox[1] + 30, y2: dBox[1] + 30,
      stroke: "#1f77b4", "stroke-width": 2 }));
    legend.append(svg("text", { x: dBox[0] + 36, y: dBox[1] + 34 }, "q = N(μ, σ²)"));
    pic.append(legend);
    const clipText = svg("text", { x: dBox[2] - 5, y: dBox[1] + 14, "text-anchor": "end", fill: "#1f77b4",
      class: "vaelab-kl-clip" });
    const dTitle = svg("text", { x: (dBox[0] + dBox[2]) / 2, y: dBox[1] - 9, "text-anchor": "middle",
      class: "title vaelab-kl-dtitle" });
    pic.append(clipText, dTitle);
    // right: the four contributions and the KL
    const bBox = [0.52 * width + 78, 30, width - 8, height - 40];
    const barLayer = svg("g", { class: "vaelab-kl-bars" });
    pic.append(barLayer);
    const bTitle = svg("text", { x: (bBox[0] + bBox[2]) / 2, y: bBox[1] - 9, "text-anchor": "middle",
      class: "title vaelab-kl-btitle" });
    pic.append(bTitle);
    view.append(top, pic);

    let barAxes = null, barKey = "";
    function drawBars(heights, limits) {
      const key = limits.join(",");
      if (key !== barKey) {  // the bar axis changes scale only at a few levels: rebuild it then
        barLayer.replaceChildren();
        const labels = [...cfg.terms, "KL"].map((t, i) => [i, t]);
        barAxes = axes(barLayer, bBox, [-0.6, 4.6], limits, labels, niceTicks(limits[0], limits[1], 6), "",
          say("bars"));
        barAxes.zero = svg("line", { x1: bBox[0], x2: bBox[2], y1: barAxes.sy(0), y2: barAxes.sy(0),
          stroke: "#000", "stroke-width": 0.8 });
        barAxes.bars = heights.map((_, i) => svg("rect", { fill: BAR_COLORS[i], class: "vaelab-kl-bar" }));
        barAxes.values = heights.map(() => svg("text", { "text-anchor": "middle", class: "vaelab-kl-value" }));
        barLayer.append(...barAxes.bars, barAxes.zero, ...barAxes.values);
        barLayer.dataset.ylim = key;
        barKey = key;
      }
      const { sx, sy } = barAxes, span = limits[1] - limits[0], half = 0.4 * (sx(1) - sx(0));
      heights.forEach((h, i) => {
        const yTop = sy(Math.max(h, 0)), yBottom = sy(Math.min(h, 0));
        const bar = barAxes.bars[i], text = barAxes.values[i];
        bar.setAttribute("x", sx(i) - half);
        bar.setAttribute("width", 2 * half);
        bar.setAttribute("y", yTop);
        bar.setAttribute("height", Math.max(0, yBottom - yTop));
        bar.dataset.height = String(h);
        text.setAttribute("x", sx(i));
        text.setAttribute("y", h >= 0 ? sy(h + 0.01 * span) - 3 : sy(h - 0.01 * span) + 11);
        text.textContent = pyFormat(h, "+.3g");
      });
    }

    function densities(mu, sigma) {
      const z = [];
      for (let i = 0; i <= 640; i += 1) z.push(zr[0] + (zr[1] - zr[0]) * i / 640);
      for (let i = 0; i <= 240; i += 1) z.push(mu + sigma * (-6 + 12 * i / 240));  // resolves a narrow q
      z.sort((a, b) => a - b);
      const q = [], prior = [];
      for (const v of z) {
        if (v < zr[0] - 1 || v > zr[1] + 1) continue;
        const x = d.sx(v).toFixed(2);
        q.push(`${x},${d.sy(Math.min(Math.exp(-0.5 * ((v - mu) / sigma) ** 2) / (sigma * SQRT_2PI),
          4 * ymax)).toFixed(2)}`);
        prior.push(`${x},${d.sy(Math.exp(-0.5 * v * v) / SQRT_2PI).toFixed(2)}`);
      }
      return { q: q.join(" "), prior: prior.join(" ") };
    }

    function render() {
      const s = useLogvar ? klState(value.mu, null, value.logvar) : klState(value.mu, value.sigma, null);
      const curves = densities(s.mu, s.sigma);
      qLine.setAttribute("points", curves.q);
      priorLine.setAttribute("points", curves.prior);
      const peak = 1.0 / (s.sigma * SQRT_2PI);
      clipText.textContent = peak > ymax ? say("peak", pyFormat(peak, ".3g")) : "";
      const g = (v) => pyFormat(v, ".3g");
      dTitle.textContent = `μ = ${g(s.mu)}, σ = ${g(s.sigma)}, log σ² = ${g(s.logvar)}`;
      const heights = [...s.contributions, s.kl];
      drawBars(heights, barLimits(heights, cfg.bar_levels));
      bTitle.textContent = `KL(q ‖ p) = ${pyFormat(s.kl, ".4f")} ${say("nats")}`;
      readout.innerHTML = `<b>KL(q ‖ p) = ${pyFormat(s.kl, ".4f")} ${say("nats")}</b> &nbsp; ` +
        `(μ = ${g(s.mu)}, σ = ${g(s.sigma)}, log σ² = ${g(s.logvar)})`;  // widgets.kl._kl_html
      rows.mu.readout.textContent = pyFormat(value.mu, cfg.mu.readout_format);
      rows.sigma.readout.textContent = pyFormat(value.sigma, cfg.sigma.readout_format);
      rows.logvar.readout.textContent = pyFormat(value.logvar, cfg.logvar.readout_format);
      rows.sigma.row.hidden = useLogvar;
      rows.logvar.row.hidden = !useLogvar;
      Object.assign(root.dataset, { mu: String(s.mu), sigma: String(s.sigma), logvar: String(s.logvar),
        useLogvar: String(useLogvar) });
    }

    rows.mu.input.addEventListener("input", () => { value.mu = grids.mu.at(Number(rows.mu.input.value)); render(); });
    rows.sigma.input.addEventListener("input", () => {
      value.sigma = cfg.sigma.base ** grids.sigma.at(Number(rows.sigma.input.value));
      render();
    });
    rows.logvar.input.addEventListener("input", () => {
      value.logvar = grids.logvar.at(Number(rows.logvar.input.value));
      render();
    });
    // Switching the input keeps q where it is, as KLExplorer._switch_input does (clamped to the slider).
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    toggle.addEventListener("change", () => {
      useLogvar = toggle.checked;
      if (useLogvar) {
        value.logvar = clamp(2.0 * Math.log(value.sigma), cfg.logvar.min, cfg.logvar.max);
        rows.logvar.input.value = String(grids.logvar.nearest(value.logvar));
      } else {
        value.sigma = clamp(Math.exp(0.5 * value.logvar), cfg.sigma.base ** cfg.sigma.min,
          cfg.sigma.base ** cfg.sigma.max);
        rows.sigma.input.value = String(grids.sigma.nearest(logOf(value.sigma)));
      }
      render();
    });
    render();
  }

  // ------------------------------------------------------------ start every live view of the page

  const VIEWS = { "beta-explorer": betaExplorer, "kl-explorer": klExplorer };

  function start(root, index) {
    const build = VIEWS[root.dataset.kind];
    const data = root.querySelector("script.vaelab-live-data");
    const note = root.querySelector(".note");
    if (!build || !data) return;
    try {
      root.id = root.id || `vaelab-live-${index}`;
      const view = el("div", { class: "vaelab-live-view" });
      build(root, view, JSON.parse(data.textContent));
      const fallback = root.querySelector(".vaelab-live-fallback");
      if (fallback) fallback.remove();
      root.append(view);
      if (note) note.textContent = LIVE_NOTE;
      root.dataset.readyMs = performance.now().toFixed(1);  // since the page was opened
      root.dataset.ready = "true";
    } catch (err) {
      if (note) note.textContent = say("failed", err.message);
    }
  }

  function startAll() {
    document.querySelectorAll(".vaelab-live").forEach(start);
  }

  window.vaelabLive = { pyFormat, klState, barLimits };
  // As soon as the page is parsed ("interactive"), before the deferred scripts (MathJax, the theme) run
  // and long before DOMContentLoaded, which waits for them.
  function whenParsed() {
    if (document.readyState === "loading") return;
    document.removeEventListener("readystatechange", whenParsed);
    startAll();
  }
  if (document.readyState === "loading") document.addEventListener("readystatechange", whenParsed);
  else startAll();
})();
