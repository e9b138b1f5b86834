// Image Factory web form: small progressive enhancements. Every page works without them.
// - extension list: filter as you type (checked items stay visible);
// - kernel modules: search as you type (server-rendered fragment), chosen ones kept apart;
// - copy buttons for IDs, commands and URLs.
(function () {
  "use strict";

  function announce(text) {
    var announcer = document.getElementById("announcer");
    if (announcer) {
      announcer.textContent = "";
      window.setTimeout(function () { announcer.textContent = text; }, 50);
    }
  }

  function setUpExtensionFilter(box) {
    var list = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    var status = box.querySelector("[aria-live]");
    if (!list || !input) { return; }
    box.hidden = false;
    var items = Array.prototype.slice.call(list.querySelectorAll("li[data-search]"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      items.forEach(function (item) {
        var text = item.getAttribute("data-search");
        var checked = item.querySelector("input:checked") !== null;
        var match = words.every(function (word) { return text.indexOf(word) !== -1; });
        item.hidden = !(match || checked);
        if (!item.hidden) { shown += 1; }
      });
      status.textContent = words.length ? shown + " of " + items.length + " extensions shown" : "";
    });
  }

  function setUpModuleSearch(input) {
    var results = document.getElementById("module-results");
    var chosen = document.getElementById("module-chosen");
    var none = document.getElementById("module-none");
    var timer = null;
    var latest = 0;

    function chosenNames() {
      return Array.prototype.map.call(chosen.querySelectorAll("input:checked"), function (box) {
        return box.value;
      });
    }

    function refresh() {
      var params = new URLSearchParams();
      params.set("version", input.getAttribute("data-version"));
      params.set("arch", input.getAttribute("data-arch"));
      params.set("q", input.value);
      chosenNames().forEach(function (name) { params.append("modules", name); });
      var ticket = ++latest;
      fetch(input.getAttribute("data-results-url") + "?" + params.toString())
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          if (ticket === latest) { results.innerHTML = html; }
        })
        .catch(function () {
          // The Search button still works: it asks the server for the whole page.
        });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    });
    results.addEventListener("change", function (event) {
      var box = event.target;
      if (box.type !== "checkbox" || !box.checked) { return; }
      var item = box.closest("li");
      chosen.appendChild(item);
      if (none) { none.hidden = true; }
      announce(box.value + " added to the chosen modules");
    });
  }

  function setUpCopy(button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () { announce("Copied to the clipboard"); },
        function () { announce("Copying failed; select the text and copy it by hand"); }
      );
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".filter[data-filter-for]").forEach(setUpExtensionFilter);
    var moduleSearch = document.getElementById("module-search");
    if (moduleSearch) { setUpModuleSearch(moduleSearch); }
    document.querySelectorAll("button.copy[data-copy]").forEach(setUpCopy);
  });
})();
