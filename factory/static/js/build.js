// "Build now" on the final page: start a build (POST /builds), follow its progress over
// Server-Sent Events and offer the download link when it is ready. Contract:
//   POST /builds {schematic, version, path} -> 202 {key, state, status_url, events_url,
//     download_url}, or 200 with state "done" when the file is built already
//   GET status_url -> {state: queued|running|done|failed, stage, percent, error, sha256, size}
//   events: stage {stage, percent} | log {line} | done {download_url, sha256, size} | failed {error}
(function () {
  "use strict";

  var STAGES = {
    kernel: "Fetching the kernel",
    cmdline: "Writing the kernel command line",
    extensions: "Packing the system extensions",
    modules: "Adding the kernel modules",
    initramfs: "Assembling the initramfs",
    iso: "Writing the ISO image",
    disk: "Writing the disk image",
    convert: "Converting the disk image",
    compress: "Compressing",
    queued: "Waiting for a free worker",
    upload: "Storing the result"
  };
  var MAX_STREAM_ERRORS = 3;

  function describeStatus(status, text) {
    var detail = text ? " (" + text.trim() + ")" : "";
    if (status === 400) { return "The factory cannot build this file for these choices" + detail + "."; }
    if (status === 404) { return "The schematic or release is no longer known to this factory" + detail + "."; }
    if (status === 501) { return "This factory does not build this kind of file yet" + detail + "."; }
    if (status === 503) { return "The factory is busy or its storage is unreachable; try again in a minute" + detail + "."; }
    return "The factory could not start the build (HTTP " + status + ")" + detail + ".";
  }

  function formatSize(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB"];
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
    this.stage.textContent = "Starting the build…";
  };

  Panel.prototype.progress = function (stage, percent) {
    var label = STAGES[stage] || stage;
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
    this.stage.textContent = "Build finished.";
    this.result.className = "result done";
    this.result.textContent = "";
    var link = document.createElement("a");
    link.href = info.download_url;
    link.className = "download-ready";
    link.textContent = "Download " + this.button.getAttribute("data-path");
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
    this.button.querySelector(".label").textContent = "Try again";
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
      panel.fail("The build failed: " + data(event).error);
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
          panel.fail("The build failed: " + status.error);
        } else if (status.state === "done") {
          panel.done({
            download_url: status.download_url || build.download_url,
            sha256: status.sha256,
            size: status.size
          });
        } else {
          panel.fail("Lost contact with the build's progress; it continues on the factory. " +
                     "Press the button again to follow it.");
        }
      })
      .catch(function () {
        panel.fail("Lost contact with the factory. Check your connection and try again.");
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
      panel.fail("Could not reach the factory. Check your connection and try again.");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-build]").forEach(function (button) {
      button.addEventListener("click", function () { startBuild(button); });
    });
  });
})();
