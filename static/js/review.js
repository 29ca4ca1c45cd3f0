// The review queue's keyboard (docs/cases.md, "The review queue"). Keys act only where they mean
// what they say: on the case (the page, the case, a decision option or a key-factor tick), never
// in a text field, on a button or link (Enter presses those), in the site menu, or behind a dialog.
//   1-9 decide · Shift+1-9 reason code · r rationale · Enter submit · s skip · u undo
//   a accept the suggestion (decision and reason code; not submitted) · ? help
// After each decision, skip or undo, focus goes back to the case, so the next keys are keys.
(function () {
  function pane() { return document.getElementById("review-pane"); }
  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      target.isContentEditable ||
      (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)));
  }
  // Where the review keys apply: nothing focused, the case itself, or its options and ticks.
  function onTheCase(target) {
    if (!target || target === document.body || target === document.documentElement) { return true; }
    const here = pane();
    if (!here || !here.contains(target)) { return false; }
    if (target.matches("input[type=radio][name=label], input[type=checkbox][name=key_factors]")) {
      return true;
    }
    return !target.closest("a, button, summary, select, textarea, input, dialog, [contenteditable]");
  }
  function focusCase() {
    const here = pane();
    if (!here) { return; }
    const target = here.querySelector(".case-view") || here;
    target.focus();
  }
  function submit(formId) {
    const form = document.getElementById(formId);
    if (form) { focusCase(); form.requestSubmit(); }
  }
  function chosenLabel() {
    return document.querySelector("#decision-form input[name=label]:checked");
  }
  function filterReasonCodes() {
    const chosen = chosenLabel();
    const select = document.getElementById("reason-code");
    if (!select) { return; }
    select.querySelectorAll("optgroup").forEach((group) => {
      const show = !chosen || group.dataset.label === chosen.value;
      group.hidden = !show;
      group.disabled = !show;
    });
    const visible = select.querySelectorAll("optgroup:not([disabled]) option");
    if (chosen && select.selectedOptions[0] && select.selectedOptions[0].parentElement.disabled) {
      select.value = "";
    }
    if (chosen && visible.length === 1) { select.value = visible[0].value; }
  }
  function choose(key) {
    const radio = document.querySelector(`#decision-form input[name=label][data-key="${key}"]`);
    if (!radio) { return false; }
    radio.checked = true;
    filterReasonCodes();
    return true;
  }
  function chooseReason(key) {
    const chosen = chosenLabel();
    const select = document.getElementById("reason-code");
    if (!chosen || !select) { return false; }
    const group = Array.from(select.querySelectorAll("optgroup"))
      .find((candidate) => candidate.dataset.label === chosen.value);
    const option = group && group.querySelector(`option[data-key="${key}"]`);
    if (!option) { return false; }
    select.value = option.value;
    return true;
  }
  function acceptSuggestion() {
    const suggested = document.querySelector("#review-pane [data-suggested-key]");
    if (!suggested || !choose(suggested.dataset.suggestedKey)) { return false; }
    const reason = suggested.dataset.suggestedReason;
    const select = document.getElementById("reason-code");
    if (reason && select && select.querySelector(
      `optgroup:not([disabled]) option[value="${CSS.escape(reason)}"]`)) {
      select.value = reason;
    }
    return true;
  }
  function help() { return document.getElementById("review-help"); }

  document.addEventListener("keydown", (event) => {
    if (!pane() || event.altKey || event.metaKey || event.isComposing) { return; }
    const target = event.target;
    const openDialog = document.querySelector("dialog[open]");
    if (openDialog) {
      // Behind a dialog nothing acts; `?` closes the help again (Esc too, natively).
      if (openDialog === help() && event.key === "?") { event.preventDefault(); openDialog.close(); }
      return;
    }
    if (target && target.id === "rationale") {
      if (event.key === "Escape") { event.preventDefault(); focusCase(); }
      if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit("decision-form"); }
      return;
    }
    if (event.ctrlKey || typing(target)) { return; }
    const inCase = onTheCase(target);
    if (event.key === "?") {
      if (inCase && help()) { event.preventDefault(); help().showModal(); }
      return;
    }
    if (!inCase) { return; }
    // The number row by physical key, whatever the layout prints on it: the key alone decides,
    // with Shift it picks a reason code (on AZERTY the key alone types "&é\"'…" and Shift gives
    // the digit, so matching event.key would leave reason codes without keys there).
    const digit = /^Digit([1-9])$/.exec(event.code || "");
    if (digit) {
      const chosen = event.shiftKey ? chooseReason(digit[1]) : choose(digit[1]);
      if (chosen) { event.preventDefault(); }
    } else if (/^[1-9]$/.test(event.key)) {  // the numeric keypad
      if (choose(event.key)) { event.preventDefault(); }
    } else if (event.key === "r") {
      const box = document.getElementById("rationale");
      if (box) { event.preventDefault(); box.focus(); }
    } else if (event.key === "Enter") {
      event.preventDefault(); submit("decision-form");
    } else if (event.key === "s") {
      event.preventDefault(); submit("skip-form");
    } else if (event.key === "u") {
      event.preventDefault(); submit("undo-form");
    } else if (event.key === "a") {
      if (acceptSuggestion()) { event.preventDefault(); }
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target && event.target.name === "label") { filterReasonCodes(); }
  });
  // Clicking a field row marks it as a key factor.
  document.addEventListener("click", (event) => {
    const row = event.target.closest && event.target.closest("tr[data-factor]");
    if (!row || event.target.tagName === "INPUT" || event.target.tagName === "A") { return; }
    const box = row.querySelector("input[name=key_factors]");
    if (box) { box.checked = !box.checked; row.classList.toggle("key-factor", box.checked); }
  });
  // htmx puts focus back on the element with the same id (the next case's rationale box): the
  // next keys must be keys, so focus goes to the new case instead.
  document.addEventListener("htmx:afterSwap", (event) => {
    const swapped = event.detail && event.detail.target;
    if ((swapped && swapped.id === "review-pane") || event.target.id === "review-pane") { focusCase(); }
  });
  // And once it has settled: if anything took focus away meanwhile and left it nowhere (the page
  // itself), the case gets it back; a person who has since clicked into a field keeps it.
  document.addEventListener("htmx:afterSettle", (event) => {
    filterReasonCodes();
    const active = document.activeElement;
    const settled = event.detail && event.detail.target;
    if (settled && settled.id === "review-pane" && (!active || active === document.body)) {
      focusCase();
    }
  });
  document.addEventListener("DOMContentLoaded", filterReasonCodes);
})();
