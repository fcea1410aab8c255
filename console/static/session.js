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
  var failed = false; // the recording could not be loaded

  // The recording is fetched once and parsed once; a new player (another
  // speed, the idle limit switched) reuses the parsed events. It is read
  // as a stream so that the first screen (firstScreen) shows as soon as
  // its bytes arrive, while a large recording is still downloading.
  var gotPoster;
  var poster = new Promise(function (resolve) { gotPoster = resolve; });
  var parsed = fetch(castURL, { credentials: "same-origin" }).then(function (resp) {
    if (!resp.ok) {
      throw new Error("recording: HTTP " + resp.status);
    }
    var reader = resp.body.getReader();
    var decoder = new TextDecoder();
    var parts = [];
    var head = "";
    function next() {
      return reader.read().then(function (r) {
        if (r.done) {
          parts.push(decoder.decode());
          return parts.join("");
        }
        var chunk = decoder.decode(r.value, { stream: true });
        parts.push(chunk);
        if (head !== null) {
          head += chunk;
          var screen = firstScreen(head, false);
          if (screen !== null) {
            gotPoster(screen);
            head = null;
          }
        }
        return next();
      });
    }
    return next();
  }).then(function (text) {
    gotPoster(firstScreen(text, true) || "");
    return parseCast(text);
  });
  parsed.catch(function () { gotPoster(""); });

  // firstScreen is the output of the recording's first output events
  // (those at the time of the first), which is the screen the page seeks
  // to first; null while text may still be missing some of them.
  function firstScreen(text, complete) {
    var lines = text.split("\n");
    if (!complete) {
      lines.pop(); // perhaps a partial line
    }
    var first = null, out = "";
    for (var i = 1; i < lines.length; i++) {
      if (lines[i].charCodeAt(0) !== 91) { // '['
        continue;
      }
      var e;
      try {
        e = JSON.parse(lines[i]);
      } catch (err) {
        return complete ? out : null;
      }
      if (first !== null && e[0] > first) {
        return out;
      }
      if (e[1] === "o") {
        first = e[0];
        out += e[2];
      }
      if (out.length > 65536) {
        return out;
      }
    }
    return complete ? out : null;
  }

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
    var events = parseEvents(nl < 0 ? "" : text.slice(nl + 1));
    var first = 0; // the first output, the page's first frame
    for (var k = 0; k < events.length; k++) {
      if (events[k][1] === "o") {
        first = events[k][0] / 1000;
        break;
      }
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
    return { cols: header.width || 80, rows: header.height || 24, events: merged, first: first };
  }

  // parseEvents reads the event lines: all at once as one JSON array
  // (several times faster than a JSON.parse per line at 50 MB), or, when
  // that fails (a blank or broken line), line by line, skipping what is
  // not an event, as the player's own parser does.
  function parseEvents(body) {
    var events;
    body = body.trim();
    try {
      events = body === "" ? [] : JSON.parse("[" + body.replaceAll("\n", ",") + "]");
    } catch (e) {
      events = [];
      body.split("\n").forEach(function (line) {
        if (line.charCodeAt(0) === 91) { // '['
          events.push(JSON.parse(line));
        }
      });
    }
    for (var i = 0; i < events.length; i++) {
      events[i][0] *= 1000;
    }
    return events;
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
  // Each player has its own time map (its idle limit).
  function create(at, play, posterText) {
    var limit = idleBox && idleBox.checked ? IDLE_LIMIT : undefined;
    var speed = speedSel ? parseFloat(speedSel.value) || 1 : 1;
    var mapping = null;
    // The map is the player's own limiter replayed over the same events,
    // so it is known as soon as they are parsed, before the player loads.
    var mapReady = parsed.then(function (rec) {
      mapping = limiterMap(rec.events, limit === undefined ? Infinity : limit * 1000);
    });
    var toPlayer = function (sec) { return mapping ? convert(mapping.real, mapping.comp, sec * 1000) / 1000 : sec; };
    var toRecording = function (sec) { return mapping ? convert(mapping.comp, mapping.real, sec * 1000) / 1000 : sec; };
    var p = window.AsciinemaPlayer.create({
      data: function () { return parsed; },
      parser: function (rec) {
        return { cols: rec.cols, rows: rec.rows, events: rec.events.slice() };
      },
    }, holder, {
      // The first screen shows at once as a text poster; the recording
      // loads on the first seek (the first screen's, or a command's).
      poster: "data:text/plain," + posterText,
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
    var moved = false; // someone asked for a place: no first-frame seek
    p.seek = function (where) {
      moved = true;
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
    } else {
      // A new page shows the session's first screen, not a blank one.
      parsed.then(function (rec) {
        return mapReady.then(function () {
          if (!moved) {
            return orig.seek(toPlayer(rec.first));
          }
        });
      }).then(updateScreen);
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
    poster.then(function (text) {
      if (failed) {
        return;
      }
      player = create(at, wasPlaying, text);
      window.wardenPlayer = player;
    });
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
      // Without the clipboard API (plain HTTP on another host) or its
      // permission, select the text, so the person can copy it with keys.
      var selectIt = function () {
        var sel = window.getSelection();
        var range = document.createRange();
        range.selectNodeContents(screenPre);
        sel.removeAllRanges();
        sel.addRange(range);
        if (done) { done.textContent = "selected: press Ctrl+C"; }
      };
      if (!navigator.clipboard) {
        selectIt();
        return;
      }
      navigator.clipboard.writeText(screenPre.textContent).then(function () {
        if (done) { done.textContent = "copied"; }
      }, selectIt);
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
    failed = true;
    holder.textContent = "The recording could not be loaded: " + err.message;
    holder.classList.add("bad");
  });
  replace();
})();
