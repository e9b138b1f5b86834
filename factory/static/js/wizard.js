// Image Factory web form: small progressive enhancements. Every page works without them.
// - extension list: filter as you type (checked items stay visible);
// - kernel modules: search as you type (server-rendered fragment), chosen ones kept apart;
// - copy buttons for IDs, commands and URLs (shown only where the clipboard can be written);
// - focus on the error box of a refused step; the upload pages keep the chosen file on errors.
(function () {
  "use strict";

  // Words come from the page (data-* attributes, in the page's language): "%(name)s" filled in.
  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (whole, name) { return String(values[name]); });
  }

  function announce(text) {
    var announcer = document.getElementById("announcer");
    if (announcer) {
      announcer.textContent = "";
      window.setTimeout(function () { announcer.textContent = text; }, 50);
    }
  }

  // Shows the items whose data-search text holds every word (or that `kept` keeps); how many.
  function filterItems(items, words, kept) {
    var shown = 0;
    items.forEach(function (item) {
      var text = item.getAttribute("data-search");
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      item.hidden = !(match || kept(item));
      if (!item.hidden) { shown += 1; }
    });
    return shown;
  }

  function setUpExtensionFilter(box) {
    var list = document.getElementById(box.getAttribute("data-filter-for"));
    var input = box.querySelector("input");
    var status = box.querySelector("[aria-live]");
    if (!list || !input) { return; }
    box.hidden = false;
    // Enter in the filter filters; it must not submit the step with nothing chosen.
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); }
    });
    var items = Array.prototype.slice.call(list.querySelectorAll("li[data-search]"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      // Checked items stay visible: hiding a choice would hide that it is made.
      var shown = filterItems(items, words, function (item) {
        return item.querySelector("input:checked") !== null;
      });
      status.textContent = words.length
        ? fill(box.getAttribute("data-shown"), { shown: shown, count: items.length })
        : "";
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
      // Moving the checkbox drops its focus: go back to the search for the next module.
      input.focus();
      announce(fill(input.getAttribute("data-added"), { name: box.value }));
    });
  }

  function setUpCopy(button) {
    if (!navigator.clipboard || !window.isSecureContext) { return; }
    button.hidden = false;
    var label = button.firstChild;  // the visible "Copy"; the rest says what for screen readers
    var original = label.textContent;
    var timer = null;

    function show(text) {
      label.textContent = text;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () { label.textContent = original; }, 2500);
    }

    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.textContent.trim()).then(
        function () {
          show(button.getAttribute("data-copied"));
          announce(button.getAttribute("data-copied"));
        },
        function () {
          show(button.getAttribute("data-failed"));
          announce(button.getAttribute("data-failed"));
        }
      );
    });
  }

  // A refused upload (of a schematic or an extension) comes back without the file (browsers
  // never refill a file field): send the form from here, so a refusal only replaces the
  // error, the file stays chosen, and the field the error is about is marked.
  function setUpUpload(form) {
    var box = document.getElementById("upload-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      fetch(form.action, { method: "POST", body: new FormData(form) })
        .then(function (response) {
          if (response.ok) { window.location.assign(response.url); return null; }
          return response.text().then(function (html) {
            var page = new DOMParser().parseFromString(html, "text/html");
            var error = page.getElementById("upload-error");
            if (!error) { throw new Error("HTTP " + response.status); }
            box.innerHTML = error.innerHTML;
            form.querySelectorAll("[aria-invalid]").forEach(function (field) {
              field.removeAttribute("aria-invalid");
            });
            var link = box.querySelector("#error-message a");
            var field = link && document.getElementById(link.getAttribute("href").slice(1));
            if (field) {
              field.setAttribute("aria-invalid", "true");
              var described = (field.getAttribute("aria-describedby") || "").split(" ");
              if (described.indexOf("error-message") === -1) {
                field.setAttribute("aria-describedby", ["error-message"].concat(described).join(" ").trim());
              }
            }
            focusError();
          });
        })
        .catch(function () { form.submit(); });  // let the browser show what happened
    });
  }

  // The catalog's search box filters the list as you type (the Show button asks the server).
  function setUpCatalogFilter(input) {
    var list = document.getElementById(input.getAttribute("data-catalog-filter"));
    var count = document.getElementById("catalog-count");
    if (!list) { return; }
    var items = Array.prototype.slice.call(list.querySelectorAll("li[data-search]"));
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = filterItems(items, words, function () { return false; });
      if (count) {
        count.textContent = fill(input.getAttribute("data-shown"), { shown: shown, count: items.length });
      }
    });
  }

  function focusError() {
    var error = document.getElementById("error");
    if (error) { error.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".filter[data-filter-for]").forEach(setUpExtensionFilter);
    var moduleSearch = document.getElementById("module-search");
    if (moduleSearch) { setUpModuleSearch(moduleSearch); }
    document.querySelectorAll("button.copy[data-copy]").forEach(setUpCopy);
    document.querySelectorAll("input[data-catalog-filter]").forEach(setUpCatalogFilter);
    var upload = document.getElementById("upload-form");
    if (upload) { setUpUpload(upload); }
    focusError();
  });
})();
