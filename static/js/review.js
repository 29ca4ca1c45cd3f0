// The review queue's keyboard: 1-9 decide, r rationale, Enter submit, s skip, u undo,
// a accept the model's suggestion (chooses it, does not submit), ? help.
(function () {
  function pane() { return document.getElementById("review-pane"); }
  function typing(target) {
    return target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type)));
  }
  function submit(formId) {
    const form = document.getElementById(formId);
    if (form) { form.requestSubmit(); }
  }
  function filterReasonCodes() {
    const chosen = document.querySelector("#decision-form input[name=label]:checked");
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

  document.addEventListener("keydown", (event) => {
    if (!pane() || event.altKey || event.metaKey) { return; }
    const target = event.target;
    if (target && target.id === "rationale") {
      if (event.key === "Escape") { target.blur(); }
      if (event.key === "Enter" && event.ctrlKey) { event.preventDefault(); submit("decision-form"); }
      return;
    }
    if (typing(target) || event.ctrlKey) { return; }
    if (/^[1-9]$/.test(event.key)) {
      const radio = document.querySelector(`#decision-form input[data-key="${event.key}"]`);
      if (radio) { radio.checked = true; filterReasonCodes(); event.preventDefault(); }
    } else if (event.key === "r") {
      const box = document.getElementById("rationale");
      if (box) { event.preventDefault(); box.focus(); }
    } else if (event.key === "Enter") {
      event.preventDefault(); submit("decision-form");
    } else if (event.key === "s") {
      submit("skip-form");
    } else if (event.key === "u") {
      submit("undo-form");
    } else if (event.key === "a") {
      const suggested = document.querySelector("#review-pane [data-suggested-key]");
      const radio = suggested &&
        document.querySelector(`#decision-form input[data-key="${suggested.dataset.suggestedKey}"]`);
      if (radio) { radio.checked = true; filterReasonCodes(); event.preventDefault(); }
    } else if (event.key === "?") {
      const help = document.getElementById("review-help");
      if (help) { help.open ? help.close() : help.showModal(); }
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
  document.addEventListener("htmx:afterSettle", filterReasonCodes);
  document.addEventListener("DOMContentLoaded", filterReasonCodes);
})();
