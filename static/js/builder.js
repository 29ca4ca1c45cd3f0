// The rule builder re-renders its form after each change of its structure (a field, an operator,
// a group, the action). Whatever the person typed while that request was on its way (a priority,
// a name, a value) is newer than what the server echoes back, so it is put back after the swap,
// with the focus and the caret where they were.
(function () {
  const FORM_ID = "rule-builder";
  const edited = new Set();  // names of fields typed in since the form's last request left

  function builderForm() { return document.getElementById(FORM_ID); }
  function isTyped(element) {
    return element && element.form && element.form.id === FORM_ID && element.name &&
      (element.tagName === "TEXTAREA" ||
        (element.tagName === "INPUT" && !["hidden", "checkbox", "radio", "submit", "button"].includes(element.type)));
  }
  function caret(element) {
    try { return [element.selectionStart, element.selectionEnd]; } catch (error) { return null; }
  }

  document.addEventListener("input", (event) => {
    if (isTyped(event.target)) { edited.add(event.target.name); }
  }, true);

  document.addEventListener("htmx:beforeRequest", (event) => {
    // That request carries the form as it is now; only what is typed from here on needs keeping.
    if (event.detail.elt && event.detail.elt.id === FORM_ID) { edited.clear(); }
  });

  let kept = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const form = builderForm();
    if (!form || event.detail.target !== form || !event.detail.shouldSwap) { kept = null; return; }
    const active = document.activeElement;
    kept = {
      values: Array.from(edited)
        .map((name) => form.elements.namedItem(name))
        .filter((element) => isTyped(element))
        .map((element) => [element.name, element.value]),
      focus: isTyped(active) ? { name: active.name, caret: caret(active) } : null,
    };
  });

  document.addEventListener("htmx:afterSwap", () => {
    const form = builderForm();
    if (!kept || !form) { return; }
    const restoring = kept;
    kept = null;
    restoring.values.forEach(([name, value]) => {
      const element = form.elements.namedItem(name);
      if (!isTyped(element) || element.value === value) { return; }
      element.value = value;
      // Inputs with their own preview request send it, so the sentence follows what is typed.
      if (element.hasAttribute("hx-post")) { element.dispatchEvent(new Event("input", { bubbles: true })); }
    });
    if (restoring.focus) {
      const element = form.elements.namedItem(restoring.focus.name);
      if (isTyped(element)) {
        element.focus();
        if (restoring.focus.caret) {
          try { element.setSelectionRange(...restoring.focus.caret); } catch (error) { /* number inputs */ }
        }
      }
    }
  });
})();
