/* The decks of `make slides` (coursekit/slides_html.py): start reveal.js with the deck's size, typeset
   the maths with the local MathJax, then scale every table, formula and code excerpt to the space left
   for it on its slide, and mark the page ready (<html data-deck-ready>) for the PDF printer and tests. */
(function () {
  "use strict";
  var cfg = window.VL_DECK;

  // Scale one visual's content to its box: as large as fits, at most cfg.maxScale, centred. Content
  // wider than the box (a table of long cells) is first let wrap at the width that, scaled, fits best.
  function fit(inner) {
    var box = inner.parentElement;
    var bw = box.clientWidth, bh = box.clientHeight;
    inner.style.transform = "none";
    inner.style.width = "";
    var iw = inner.offsetWidth, ih = inner.offsetHeight;
    if (!bw || !bh || !iw || !ih) return;
    var s = Math.min(cfg.maxScale, bw / iw, bh / ih);
    if (iw > bw && !inner.querySelector("pre")) {
      var best = {s: s, width: ""};  // "": no wrapping (max-content)
      for (var t = 1; t >= 0.4; t -= 0.05) {  // wrap at bw / t, to be shown scaled by about t
        inner.style.width = Math.ceil(bw / t) + "px";
        var w = inner.scrollWidth, h = inner.offsetHeight;
        var st = Math.min(bw / w, bh / h);
        if (st > best.s + 1e-3) best = {s: st, width: Math.ceil(w) + "px"};
      }
      inner.style.width = best.width;
      iw = inner.offsetWidth;
      ih = inner.offsetHeight;
      s = Math.min(cfg.maxScale, bw / iw, bh / ih);
    }
    inner.style.left = Math.max(0, (bw - iw * s) / 2) + "px";
    inner.style.top = Math.max(0, (bh - ih * s) / 2) + "px";
    inner.style.transform = "scale(" + s + ")";
    inner.setAttribute("data-scale", s.toFixed(3));
  }

  function fitAll() {
    var all = document.querySelectorAll(".vl-visual > .vl-fit");
    for (var i = 0; i < all.length; i++) fit(all[i]);
  }

  function typeset() {  // MathJax 3, started with typeset: false
    if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return Promise.resolve();
    return MathJax.startup.promise.then(function () {
      return MathJax.typesetPromise([document.querySelector(".reveal .slides")]);
    });
  }

  function imagesLoaded() {
    var waits = Array.prototype.map.call(document.images, function (img) {
      return img.complete ? Promise.resolve() : new Promise(function (resolve) {
        img.addEventListener("load", resolve); img.addEventListener("error", resolve);
      });
    });
    return Promise.all(waits);
  }

  Reveal.initialize({
    width: cfg.width, height: cfg.height, margin: 0, minScale: 0.1, maxScale: 3,
    center: false, hash: true, transition: "fade", transitionSpeed: "fast",
    slideNumber: "c/t", showSlideNumber: "speaker", controls: false, progress: true,
    viewDistance: 1000, mobileViewDistance: 1000, pdfMaxPagesPerSlide: 1, pdfSeparateFragments: false,
    plugins: window.RevealNotes ? [RevealNotes] : []
  }).then(function () {
    var fonts = document.fonts ? document.fonts.ready : Promise.resolve();
    return Promise.all([fonts, typeset(), imagesLoaded()]);
  }).then(function () {
    fitAll();
    Reveal.on("pdf-ready", fitAll);
    document.documentElement.setAttribute(cfg.ready, "1");
  });
})();
