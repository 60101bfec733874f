// Cosmos Workflow's page behaviour: small, framework-free, on top of htmx.
(function () {
  "use strict";

  // Live events carry every fragment a page might show of a run; keep those this page has, so
  // htmx does not report a missing target for the rest.
  htmx.defineExtension("only-present", {
    transformResponse: function (text) {
      var template = document.createElement("template");
      template.innerHTML = text;
      Array.from(template.content.children).forEach(function (child) {
        if (child.id && !document.getElementById(child.id)) child.remove();
      });
      return template.innerHTML;
    },
  });

  // Pages poll only while their socket is down: [document.body.dataset.ws !== 'open'].
  function setSocketState(state) { document.body.dataset.ws = state; }
  document.addEventListener("htmx:wsOpen", function () { setSocketState("open"); });
  document.addEventListener("htmx:wsClose", function () { setSocketState("closed"); });
  document.addEventListener("htmx:wsError", function () { setSocketState("closed"); });

  // An open socket can still lose an event (Redis pub/sub delivers at most once), so the run
  // page also re-reads its progress now and then. A poll's answer that a newer socket event
  // overtook is older than what the page shows: keep the newer.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var shown = event.detail.target.querySelector("[data-seq]");
    var incoming = /data-seq="(\d*)"/.exec(event.detail.serverResponse || "");
    if (shown && incoming && Number(incoming[1]) < Number(shown.dataset.seq)) event.detail.shouldSwap = false;
  });

  // A run page opened while the run was active reloads once it ends, to show its output or error.
  var ACTIVE = ["pending", "uploading", "running", "downloading"];
  function reloadWhenFinished() {
    var main = document.querySelector("main[data-run-id]");
    if (!main || ACTIVE.indexOf(main.dataset.runStatus) < 0) return;
    var progress = document.getElementById("run-progress-" + main.dataset.runId);
    if (progress && ACTIVE.indexOf(progress.dataset.status) < 0 && !main.dataset.reloading) {
      main.dataset.reloading = "1";
      window.setTimeout(function () { window.location.reload(); }, 600);
    }
  }
  document.addEventListener("htmx:wsAfterMessage", reloadWhenFinished);
  document.addEventListener("htmx:afterSwap", reloadWhenFinished);

  // A log tail ends with its newest line: show that end, as `tail -f` would.
  function scrollLogsToEnd() {
    document.querySelectorAll("pre.log").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
  }
  document.addEventListener("DOMContentLoaded", scrollLogsToEnd);
  document.addEventListener("htmx:afterSwap", scrollLogsToEnd);

  // Gallery: a muted preview plays while the pointer rests on a tile; an image run shows its image.
  document.addEventListener("mouseover", function (event) {
    var tile = event.target.closest && event.target.closest(".tile[data-preview], .tile[data-preview-image]");
    if (!tile || tile.querySelector(".preview")) return;
    var preview;
    if (tile.dataset.preview) {
      preview = document.createElement("video");
      preview.src = tile.dataset.preview;
      preview.muted = true;
      preview.loop = true;
      preview.playsInline = true;
      preview.autoplay = true;
    } else {
      preview = document.createElement("img");
      preview.src = tile.dataset.previewImage;
      preview.alt = "";
    }
    preview.className = "preview";
    tile.prepend(preview);
    tile.addEventListener("mouseleave", function () { preview.remove(); }, { once: true });
  });

  // Run page: the control videos beside the output video play, pause and seek with it.
  function followOutput(root) {
    var lead = root.querySelector("video[data-lead]");
    var followers = Array.from(root.querySelectorAll("video[data-follows]"));
    if (!lead || !followers.length) return;
    function align() {
      followers.forEach(function (v) {
        if (Math.abs(v.currentTime - lead.currentTime) > 0.08) v.currentTime = lead.currentTime;
      });
    }
    lead.addEventListener("play", function () {
      align();
      followers.forEach(function (v) { v.play().catch(function () {}); });
    });
    lead.addEventListener("pause", function () {
      followers.forEach(function (v) { v.pause(); });
      align();
    });
    lead.addEventListener("seeked", align);
    lead.addEventListener("timeupdate", align);
    lead.addEventListener("ratechange", function () {
      followers.forEach(function (v) { v.playbackRate = lead.playbackRate; });
    });
    root.follow = { lead: lead, followers: followers };
  }

  // Compare (and a sweep's grid): one set of controls drives every video; drift is corrected as
  // they play. Images (image runs) stand still; with no video there are no controls either. The
  // videos are looked up as they are needed, and followed through events caught in the capture
  // phase (media events do not bubble): a sweep's cells swap their video in as their runs end.
  function setUpCompare(root) {
    var play = root.querySelector("[data-compare-play]");
    var seek = root.querySelector("[data-compare-seek]");
    var time = root.querySelector("[data-compare-time]");
    if (!play || !seek || !time) return;
    function videos() { return Array.from(root.querySelectorAll("video")); }
    function lead() { return videos()[0]; }
    function duration() {
      return Math.min.apply(null, videos().map(function (v) { return v.duration || 0; })) || 0;
    }
    function seekAll(seconds) { videos().forEach(function (v) { v.currentTime = seconds; }); }
    play.addEventListener("click", function () {
      var first = lead();
      if (!first) return;
      if (first.paused) {
        seekAll(first.currentTime);
        Promise.all(videos().map(function (v) { return v.play(); })).catch(function () {});
        play.textContent = "Pause";
      } else {
        videos().forEach(function (v) { v.pause(); });
        seekAll(first.currentTime);
        play.textContent = "Play";
      }
    });
    seek.addEventListener("input", function () { seekAll(duration() * seek.value / 1000); });
    root.addEventListener("timeupdate", function (event) {
      var first = lead();
      if (event.target !== first) return;
      var total = duration();
      if (total) seek.value = Math.round(1000 * first.currentTime / total);
      time.textContent = first.currentTime.toFixed(2) + " s";
      videos().slice(1).forEach(function (v) {
        if (Math.abs(v.currentTime - first.currentTime) > 0.08) v.currentTime = first.currentTime;
      });
    }, true);
    root.addEventListener("ended", function (event) {
      if (event.target !== lead()) return;
      videos().forEach(function (v) { v.pause(); });
      play.textContent = "Play";
    }, true);
    // A video that arrives while the others play joins them where they are.
    root.addEventListener("loadeddata", function (event) {
      var first = lead();
      if (!first || event.target === first || first.paused) return;
      event.target.currentTime = first.currentTime;
      event.target.play().catch(function () {});
    }, true);
    root.compare = { videos: videos, seekAll: seekAll };
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-compare]").forEach(setUpCompare);
    document.querySelectorAll("[data-output-media]").forEach(followOutput);
  });
})();
