// The desk without this script works: a running send has a Refresh link, every action is a
// form. With it, a running send's figures update themselves, and on a keyboard
// j / k move between stories, a opens the approval page, ? shows the shortcuts.
(function () {
  "use strict";

  var box = document.getElementById("progress");
  var url = box && box.getAttribute("data-poll");
  function set(id, text) {
    var e = document.getElementById(id);
    if (e) e.textContent = text;
  }
  function fresh() {
    // The new state changes the buttons: load the page again (without the old notice).
    if (location.search) location.replace(location.pathname + "#progress");
    else location.reload();
  }
  var leaving = false; // a form is being sent: its answer is the next page, not the poll's
  document.addEventListener("submit", function () {
    leaving = true;
  });
  function tick() {
    if (leaving) return;
    fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (p) {
        ["sent", "deferred", "failed", "suppressed"].forEach(function (k) {
          set("p-" + k, Number(p[k]).toLocaleString("en"));
        });
        var bar = document.getElementById("p-bar");
        if (bar) {
          bar.max = p.total || 1;
          bar.value = p.done;
        }
        if (leaving) return;
        set("p-line", p.line);
        var paused = box.getAttribute("data-paused") === "true";
        if (p.state !== box.getAttribute("data-state") || p.paused !== paused) return fresh();
        setTimeout(tick, 1500);
      })
      .catch(function () {
        setTimeout(tick, 5000); // the server restarting, or the network gone for a moment
      });
  }
  if (url) setTimeout(tick, 1000);

  // Keyboard shortcuts, only where there is a keyboard and not while typing.
  var stories = Array.prototype.slice.call(document.querySelectorAll("#stories li.story"));
  var at = -1;
  var help = null;
  function toggleHelp() {
    if (!help) {
      help = document.createElement("aside");
      help.id = "shortcuts";
      help.className = "card shortcuts";
      help.setAttribute("role", "dialog");
      help.setAttribute("aria-label", "Keyboard shortcuts");
      var lines = [
        ["j", "next story"],
        ["k", "previous story"],
        ["a", "approve (opens the confirmation)"],
        ["?", "show or hide this help"],
      ];
      var list = document.createElement("dl");
      lines.forEach(function (l) {
        var dt = document.createElement("dt");
        var kbd = document.createElement("kbd");
        kbd.textContent = l[0];
        dt.appendChild(kbd);
        var dd = document.createElement("dd");
        dd.textContent = l[1];
        list.appendChild(dt);
        list.appendChild(dd);
      });
      var title = document.createElement("p");
      title.innerHTML = "<strong>Keyboard shortcuts</strong>";
      help.appendChild(title);
      help.appendChild(list);
      help.hidden = true;
      document.body.appendChild(help);
    }
    help.hidden = !help.hidden;
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (ev.key === "?") {
      toggleHelp();
    } else if ((ev.key === "j" || ev.key === "k") && stories.length) {
      at = Math.max(0, Math.min(stories.length - 1, at + (ev.key === "j" ? 1 : -1)));
      stories.forEach(function (s, i) {
        s.classList.toggle("current", i === at);
      });
      stories[at].setAttribute("tabindex", "-1");
      stories[at].focus();
      stories[at].scrollIntoView({ block: "center" });
    } else if (ev.key === "a" && document.getElementById("approve")) {
      var m = location.pathname.match(/^\/e\/(\d+)$/);
      var token = new URLSearchParams(location.search).get("t");
      if (m) location.href = "/e/" + m[1] + "/approve" + (token ? "?t=" + encodeURIComponent(token) : "");
    } else if (ev.key === "Escape" && help && !help.hidden) {
      help.hidden = true;
    } else {
      return;
    }
    ev.preventDefault();
  });
})();
