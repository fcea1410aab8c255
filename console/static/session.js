// Warden console: the session page's player (asciinema-player 3.17.0,
// static/player/). The page passes everything through data- attributes:
// #warden-player[data-cast] is the recording's URL, and each command row
// tr[data-warden-command][data-offset] is a logged command and its offset
// in seconds into the recording.
//
// Time. The player's idle-time limit (on by default) shortens every pause
// longer than the limit, so the player's own clock runs on a compressed
// timeline. The page speaks recording time everywhere (data-offset, the
// contract's "seconds into the recording"), so window.wardenPlayer, the
// asciinema-player instance, has getCurrentTime, getDuration and seek
// translated to recording time. The translation replays the player's own
// idle limiter (prepareRecording/timeLimiter in the bundle) over the same
// events, which this page parses itself (parseCast) and hands to the
// player, commands included as its markers. The untranslated methods stay
// reachable as wardenPlayer.playerTime.
"use strict";
(function () {
  var holder = document.getElementById("warden-player");
  if (!holder || !window.AsciinemaPlayer) {
    return;
  }
  var IDLE_LIMIT = 2; // seconds, when the limit is on
  var castURL = holder.getAttribute("data-cast");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-warden-command][data-offset]"));
  var commands = rows.map(function (tr) {
    return { row: tr, offset: parseFloat(tr.getAttribute("data-offset")) || 0, label: tr.getAttribute("data-label") || "" };
  });
  commands.sort(function (a, b) { return a.offset - b.offset; });

  var speedSel = document.getElementById("warden-speed");
  var idleBox = document.getElementById("warden-idle");
  var screenPre = document.getElementById("warden-screen-text");
  var player = null;
  var playing = false; // the player in use is playing (its events say so)

  // The recording is fetched once and parsed once; a new player (another
  // speed, the idle limit switched) reuses the parsed events.
  var parsed = fetch(castURL, { credentials: "same-origin" }).then(function (resp) {
    if (!resp.ok) {
      throw new Error("recording: HTTP " + resp.status);
    }
    return resp.text();
  }).then(parseCast);

  // parseCast reads asciicast v2 text (what Warden's recorder writes):
  // a JSON header line, then one [seconds, code, data] array per line.
  // Times become milliseconds, as the player's own parser makes them, and
  // each command is inserted as a marker event at its offset.
  function parseCast(text) {
    var nl = text.indexOf("\n");
    var header = JSON.parse(nl < 0 ? text : text.slice(0, nl));
    if (header.version !== 2) {
      throw new Error("recording: asciicast v" + header.version + " is not supported here");
    }
    var events = [];
    var start = nl + 1;
    while (nl >= 0 && start < text.length) {
      var end = text.indexOf("\n", start);
      if (end < 0) {
        end = text.length;
      }
      if (text.charCodeAt(start) === 91) { // '['
        var e = JSON.parse(text.slice(start, end));
        events.push([e[0] * 1000, e[1], e[2]]);
      }
      start = end + 1;
    }
    var merged = [];
    var i = 0;
    commands.forEach(function (c) {
      var t = c.offset * 1000;
      while (i < events.length && events[i][0] <= t) {
        merged.push(events[i++]);
      }
      merged.push([t, "m", c.label]);
    });
    while (i < events.length) {
      merged.push(events[i++]);
    }
    return { cols: header.width || 80, rows: header.height || 24, events: merged };
  }

  // limiterMap replays the player's timeLimiter over events: the
  // compressed time of each event, beside its recording time.
  function limiterMap(events, limitMs) {
    var real = [0], comp = [0];
    var previous = 0, shift = 0;
    events.forEach(function (e) {
      var delta = e[0] - previous - limitMs;
      previous = e[0];
      if (delta > 0) {
        shift += delta;
      }
      real.push(e[0]);
      comp.push(e[0] - shift);
    });
    return { real: real, comp: comp };
  }

  // convert maps t (ms) from one timeline to the other, linearly between
  // the two events around it, so that the two maps are each other's
  // inverse.
  function convert(from, to, t) {
    var lo = 0, hi = from.length - 1;
    if (t >= from[hi]) {
      return to[hi] + (t - from[hi]);
    }
    while (lo + 1 < hi) {
      var mid = (lo + hi) >> 1;
      if (from[mid] <= t) { lo = mid; } else { hi = mid; }
    }
    var span = from[hi] - from[lo];
    if (span <= 0) {
      return to[lo];
    }
    return to[lo] + (t - from[lo]) * (to[hi] - to[lo]) / span;
  }
  // create builds a player with the controls' speed and idle limit,
  // positioned at recording time at (seconds), playing if play is set.
  // Each player has its own time map, made when its parser runs.
  function create(at, play) {
    var limit = idleBox && idleBox.checked ? IDLE_LIMIT : undefined;
    var speed = speedSel ? parseFloat(speedSel.value) || 1 : 1;
    var mapping = null;
    var mapped;
    var mapReady = new Promise(function (resolve) { mapped = resolve; });
    var toPlayer = function (sec) { return mapping ? convert(mapping.real, mapping.comp, sec * 1000) / 1000 : sec; };
    var toRecording = function (sec) { return mapping ? convert(mapping.comp, mapping.real, sec * 1000) / 1000 : sec; };
    var p = window.AsciinemaPlayer.create({
      data: function () { return parsed; },
      parser: function (rec) {
        mapping = limiterMap(rec.events, limit === undefined ? Infinity : limit * 1000);
        mapped();
        return { cols: rec.cols, rows: rec.rows, events: rec.events.slice() };
      },
    }, holder, {
      preload: true,
      speed: speed,
      idleTimeLimit: limit,
      fit: "width",
      terminalFontSize: "small",
    });
    var orig = { getCurrentTime: p.getCurrentTime, getDuration: p.getDuration, seek: p.seek };
    p.playerTime = orig;
    p.getCurrentTime = function () { return toRecording(orig.getCurrentTime()); };
    p.getDuration = function () {
      var d = orig.getDuration();
      return d === undefined || d === null ? d : toRecording(d);
    };
    p.seek = function (where) {
      if (typeof where !== "number") {
        return orig.seek(where);
      }
      return mapReady.then(function () { return orig.seek(toPlayer(where)); });
    };
    p.addEventListener("marker", function (ev) {
      highlight(ev.index);
    });
    p.addEventListener("play", function () { playing = true; });
    p.addEventListener("playing", function () { playing = true; });
    p.addEventListener("pause", function () { playing = false; updateScreen(); });
    p.addEventListener("ended", function () { playing = false; updateScreen(); });
    if (at > 0) {
      p.seek(at).then(function () { if (play) { p.play(); } });
    } else if (play) {
      p.play();
    }
    return p;
  }

  function highlight(index) {
    rows.forEach(function (tr) { tr.classList.remove("current"); });
    if (commands[index]) {
      commands[index].row.classList.add("current");
    }
  }

  // replace rebuilds the player (speed and idle limit are creation
  // options) where the old one was.
  function replace() {
    var at = 0, wasPlaying = playing;
    if (player) {
      at = player.getCurrentTime();
      player.dispose();
    }
    playing = false;
    player = create(at, wasPlaying);
    window.wardenPlayer = player;
  }

  // screenText is the terminal's text as the player renders it: one
  // .ap-line per row of the screen, trailing blanks trimmed.
  function screenText() {
    var lines = holder.querySelectorAll(".ap-term-text .ap-line");
    var out = [];
    for (var i = 0; i < lines.length; i++) {
      out.push(lines[i].textContent.replace(/\s+$/, ""));
    }
    while (out.length && out[out.length - 1] === "") {
      out.pop();
    }
    return out.join("\n");
  }
  function updateScreen() {
    if (screenPre) {
      var t = screenText();
      if (screenPre.textContent !== t) {
        screenPre.textContent = t;
      }
    }
  }

  rows.forEach(function (tr) {
    var seekRow = function () {
      if (player) {
        player.seek(parseFloat(tr.getAttribute("data-offset")) || 0).then(updateScreen);
      }
      highlight(commands.findIndex(function (c) { return c.row === tr; }));
    };
    tr.addEventListener("click", seekRow);
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        seekRow();
      }
    });
  });
  if (speedSel) {
    speedSel.addEventListener("change", replace);
  }
  if (idleBox) {
    idleBox.addEventListener("change", replace);
    var lim = document.getElementById("warden-idle-limit");
    if (lim) {
      lim.textContent = String(IDLE_LIMIT);
    }
  }
  var copy = document.getElementById("warden-copy");
  if (copy) {
    copy.addEventListener("click", function () {
      updateScreen();
      var done = document.getElementById("warden-copied");
      navigator.clipboard.writeText(screenPre.textContent).then(function () {
        if (done) { done.textContent = "copied"; }
      }, function () {
        // No clipboard permission (plain HTTP on another host): select
        // the text, so the person can copy it with their keys.
        var sel = window.getSelection();
        var range = document.createRange();
        range.selectNodeContents(screenPre);
        sel.removeAllRanges();
        sel.addRange(range);
        if (done) { done.textContent = "selected: press Ctrl+C"; }
      });
    });
  }
  // The screen text follows playback while its view is open.
  setInterval(function () {
    var d = document.getElementById("warden-screen");
    if (d && d.open) {
      updateScreen();
    }
  }, 250);
  parsed.catch(function (err) {
    holder.textContent = "The recording could not be loaded: " + err.message;
    holder.classList.add("bad");
  });
  replace();
})();
