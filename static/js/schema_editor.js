// The process form's schema editor (templates/cases/process_form.html): an input that only counts
// for one field type (choices for a category, currency for money) is hidden while its row has
// another type. Without scripts every input stays visible; the server ignores the idle ones.
(function () {
  function showInputsFor(row) {
    const type = row.querySelector("select[name$='-type']");
    if (!type) { return; }
    row.querySelectorAll("[data-for-type]").forEach((input) => {
      input.hidden = input.dataset.forType !== type.value;
    });
  }
  function showAll(root) {
    root.querySelectorAll("[data-schema-row]").forEach(showInputsFor);
  }
  document.addEventListener("DOMContentLoaded", () => showAll(document));
  document.addEventListener("htmx:afterSettle", (event) => showAll(event.target));
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("[data-schema-row] select[name$='-type']")) {
      showInputsFor(event.target.closest("[data-schema-row]"));
    }
  });
})();
