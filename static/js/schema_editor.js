// The process form's schema editor (templates/cases/process_form.html).
//
// An input that only counts for one field type (choices for a category, currency for money) is
// hidden while its row has another type. Without scripts every input stays visible; the server
// ignores the idle ones.
//
// A row button (add, up, down, remove) posts the form and swaps the editor with the server's
// answer, which echoes the rows as they were when the request left. What the person typed or
// changed meanwhile is newer: it is put back after the swap, in the row where it now is, with the
// focus and the caret where they were. (The editor settles at once, settle:0ms, so no keystroke
// lands between the swap and the restoring.)
(function () {
  const EDITOR_ID = "schema-editor";

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

  // --- keeping what is typed while a row edit is on its way ---------------------------------
  const edited = new Set();  // names of inputs changed since the editor's last request left
  let action = "";           // the pressed button's value: how the rows move
  let kept = null;

  function inEditor(element) {
    return element && element.name && element.closest && element.closest(`#${EDITOR_ID}`) &&
      ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName) &&
      !["hidden", "submit", "button", "file"].includes(element.type);
  }
  // Where a row's input is after the edit: "fields-3-name" moves with its row, or is gone.
  function movedName(name) {
    const input = /^(fields|decisions)-(\d+)-(\w+)$/.exec(name);
    const edit = /^(up|down|remove)-(field|decision)-(\d+)$/.exec(action);
    if (!input || !edit || `${edit[2]}s` !== input[1]) { return name; }
    let row = Number(input[2]);
    const at = Number(edit[3]);
    if (edit[1] === "remove") {
      if (row === at) { return null; }
      if (row > at) { row -= 1; }
    } else {
      const other = edit[1] === "up" ? at - 1 : at + 1;
      if (row === at) { row = other; } else if (row === other) { row = at; }
    }
    return `${input[1]}-${row}-${input[3]}`;
  }
  function caret(element) {
    try { return [element.selectionStart, element.selectionEnd]; } catch (error) { return null; }
  }

  document.addEventListener("input", (event) => {
    if (inEditor(event.target)) { edited.add(event.target.name); }
  }, true);
  document.addEventListener("change", (event) => {
    if (inEditor(event.target)) { edited.add(event.target.name); }
  }, true);

  document.addEventListener("htmx:beforeRequest", (event) => {
    const target = event.detail.target;
    if (!target || target.id !== EDITOR_ID) { return; }
    // That request carries the form as it is now; only what changes from here on needs keeping.
    edited.clear();
    action = (event.detail.elt && event.detail.elt.value) || "";
  });

  document.addEventListener("htmx:beforeSwap", (event) => {
    const editor = document.getElementById(EDITOR_ID);
    kept = null;
    if (!editor || event.detail.target !== editor || !event.detail.shouldSwap) { return; }
    const form = editor.closest("form");
    const active = document.activeElement;
    kept = {
      form,
      values: Array.from(edited)
        .map((name) => form.elements.namedItem(name))
        .filter((element) => inEditor(element))
        .map((element) => [movedName(element.name), element.type === "checkbox" ? element.checked : element.value]),
      // Someone in an input keeps it (the answer's autofocus is for the pressed button's user).
      focus: inEditor(active) ? { name: movedName(active.name), caret: caret(active) } : null,
    };
  });

  document.addEventListener("htmx:afterSettle", () => {
    if (!kept) { return; }
    const restoring = kept;
    kept = null;
    restoring.values.forEach(([name, value]) => {
      const element = name && restoring.form.elements.namedItem(name);
      if (!inEditor(element)) { return; }
      if (element.type === "checkbox") { element.checked = value; } else { element.value = value; }
      if (element.tagName === "SELECT") { showInputsFor(element.closest("[data-schema-row]")); }
    });
    const element = restoring.focus && restoring.focus.name && restoring.form.elements.namedItem(restoring.focus.name);
    if (inEditor(element)) {
      element.focus();
      if (restoring.focus.caret) {
        try { element.setSelectionRange(...restoring.focus.caret); } catch (error) { /* not text */ }
      }
    }
  });
})();
