// "Build now" on the final page: start a build (POST /builds), follow its progress over
// Server-Sent Events and offer the download link when it is ready. Contract:
//   POST /builds {schematic, version, path} -> 202 {key, state, status_url, events_url,
//     download_url}, or 200 with state "done" when the file is built already
//   GET status_url -> {state: queued|running|done|failed, stage, percent, error, sha256, size}
//   events: stage {stage, percent} | log {line} | done {download_url, sha256, size} | failed {error}
(function () {
  "use strict";

  // Words come from the final page (data-words, in its language); "%(name)s" filled in.
  var WORDS = {};

  function say(key, values) {
    var template = WORDS[key] || key;
    return template.replace(/%\((\w+)\)s/g, function (whole, name) { return String(values[name]); });
  }

  var MAX_STREAM_ERRORS = 3;

  function describeStatus(status, text) {
    var detail = text ? " (" + text.trim() + ")" : "";
    var known = { 400: "refused", 404: "unknown", 501: "unsupported", 503: "busy" };
    return say(known[status] || "not_started", { detail: detail, status: status });
  }

  function formatSize(bytes) {
    var units = [say("bytes", {}), "KiB", "MiB", "GiB"];
    var value = bytes;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (unit === 0 ? value : value.toFixed(1)) + " " + units[unit];
  }

  function Panel(button) {
    this.button = button;
    this.root = document.getElementById(button.getAttribute("aria-controls"));
    this.stage = this.root.querySelector(".stage");
    this.bar = this.root.querySelector("progress");
    this.logBox = this.root.querySelector("details.log");
    this.log = this.logBox.querySelector("pre");
    this.result = this.root.querySelector(".result");
  }

  Panel.prototype.start = function () {
    this.root.hidden = false;
    this.button.disabled = true;
    this.result.textContent = "";
    this.result.className = "result";
    this.log.textContent = "";
    this.logBox.hidden = true;
    this.bar.hidden = false;
    this.bar.removeAttribute("value");  // indeterminate until the first stage arrives
    this.stage.textContent = say("starting", {});
  };

  Panel.prototype.progress = function (stage, percent) {
    var label = WORDS["stage_" + stage] || stage;
    this.bar.value = percent;
    this.stage.textContent = label + ": " + percent + "%";
  };

  // Log lines come as "<logger>: <message>"; people need the message, not our module names.
  var LOGGER_PREFIX = /^[a-z_]+(\.[a-z_]+)*: /;

  Panel.prototype.line = function (text) {
    this.logBox.hidden = false;
    this.log.textContent += text.replace(LOGGER_PREFIX, "") + "\n";
    this.log.scrollTop = this.log.scrollHeight;
  };

  Panel.prototype.done = function (info) {
    this.bar.value = 100;
    this.stage.textContent = say("finished", {});
    this.result.className = "result done";
    this.result.textContent = "";
    var link = document.createElement("a");
    link.href = info.download_url;
    link.className = "download-ready";
    link.textContent = say("download", { path: this.button.getAttribute("data-path") });
    this.result.appendChild(link);
    if (info.size !== undefined) {
      this.result.appendChild(document.createTextNode(" (" + formatSize(info.size) + ")"));
    }
    if (info.sha256) {
      var sum = document.createElement("code");
      sum.className = "sha256";
      sum.textContent = info.sha256;
      this.result.appendChild(document.createElement("br"));
      this.result.appendChild(document.createTextNode("sha256 "));
      this.result.appendChild(sum);
    }
    // Same inputs, same bytes: building again would only return this file, so the button
    // goes; the download link above replaces it.
    this.button.hidden = true;
    link.focus();
  };

  Panel.prototype.fail = function (message) {
    this.bar.hidden = true;
    this.stage.textContent = "";
    this.result.className = "result failed";
    this.result.textContent = message;
    this.button.disabled = false;
    this.button.querySelector(".label").textContent = say("try_again", {});
  };

  function follow(build, panel) {
    var source = new EventSource(build.events_url);
    var errors = 0;
    var finished = false;

    function finish() { finished = true; source.close(); }
    function data(event) { return JSON.parse(event.data); }

    source.addEventListener("stage", function (event) {
      errors = 0;
      var info = data(event);
      panel.progress(info.stage, info.percent);
    });
    source.addEventListener("log", function (event) { panel.line(data(event).line); });
    source.addEventListener("done", function (event) {
      finish();
      var info = data(event);
      info.download_url = info.download_url || build.download_url;
      panel.done(info);
    });
    source.addEventListener("failed", function (event) {
      finish();
      panel.fail(say("failed", { error: data(event).error }));
    });
    source.addEventListener("error", function () {
      if (finished) { return; }
      errors += 1;
      if (source.readyState !== EventSource.CLOSED && errors < MAX_STREAM_ERRORS) { return; }
      finish();
      checkStatus(build, panel);
    });
  }

  // The progress stream broke: ask once where the build stands.
  function checkStatus(build, panel) {
    fetch(build.status_url, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (status) {
        if (status.state === "failed") {
          panel.fail(say("failed", { error: status.error }));
        } else if (status.state === "done") {
          panel.done({
            download_url: status.download_url || build.download_url,
            sha256: status.sha256,
            size: status.size
          });
        } else {
          panel.fail(say("lost_progress", {}));
        }
      })
      .catch(function () {
        panel.fail(say("lost_factory", {}));
      });
  }

  function startBuild(button) {
    var panel = new Panel(button);
    panel.start();
    var body = JSON.stringify({
      schematic: button.getAttribute("data-schematic"),
      version: button.getAttribute("data-version"),
      path: button.getAttribute("data-path")
    });
    fetch(button.getAttribute("data-build"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body
    }).then(function (response) {
      if (response.status !== 202 && response.status !== 200) {
        return response.text().then(function (text) {
          panel.fail(describeStatus(response.status, text));
        });
      }
      return response.json().then(function (build) {
        if (build.state === "done") {
          panel.done({ download_url: build.download_url });  // built before: nothing to follow
        } else {
          follow(build, panel);
        }
      });
    }).catch(function () {
      panel.fail(say("unreachable", {}));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.querySelector("[data-words]");
    if (source) { WORDS = JSON.parse(source.getAttribute("data-words")); }
    document.querySelectorAll("button[data-build]").forEach(function (button) {
      button.addEventListener("click", function () { startBuild(button); });
    });
  });
})();
