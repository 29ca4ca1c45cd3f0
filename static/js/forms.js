// Forms people can't break: copy buttons for secrets and links, a confirmation dialog before a
// destructive POST, and reason-code lists that follow the chosen decision. No inline scripts (the
// Content-Security-Policy forbids them): everything hangs off data attributes.
//   data-copy-target="<id>"        on a button: copies that field (templates/components/copyable.html)
//   data-select-on-click           on a read-only field: a click selects all of it
//   data-confirm="<question>"      on a form: asks in a <dialog> before it is sent
//     data-confirm-button="<verb>" the confirming button's words (default "Confirm")
//   data-options-follow="<id>"     on a <select>: only its <optgroup data-label> matching the
//                                  chosen value of the select <id> is offered
// Without scripts the field is there to select by hand and the forms are sent as they are.
(function () {
  // --- copy ------------------------------------------------------------------------------------
  function enhance(root) {
    root.querySelectorAll("button[data-copy-target][hidden]").forEach((button) => {
      button.hidden = false;
    });
    root.querySelectorAll("select[data-options-follow]").forEach(followChoice);
  }

  function copyStatus(field) {
    return document.querySelector(`[data-copy-status-for="${CSS.escape(field.id)}"]`);
  }

  async function copy(button) {
    const field = document.getElementById(button.dataset.copyTarget);
    if (!field) { return; }
    let copied = false;
    try {
      // Needs a secure context (https or localhost); elsewhere it is undefined and throws.
      await navigator.clipboard.writeText(field.value);
      copied = true;
    } catch (error) {
      copied = false;
    }
    if (!copied) {
      field.focus();
      field.select();
      try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    }
    const label = button.querySelector(".copy-label") || button;
    const status = copyStatus(field);
    label.textContent = copied ? "Copied" : "Copy";
    button.classList.toggle("copied", copied);
    if (status) {
      status.textContent = copied
        ? "Copied to the clipboard."
        : "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
    if (!copied) { field.select(); }
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(() => {
      label.textContent = "Copy";
      button.classList.remove("copied");
      if (status) { status.textContent = ""; }
    }, 4000);
  }

  document.addEventListener("click", (event) => {
    const target = event.target;
    if ((target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement)
        && target.matches("[data-select-on-click]")) {
      target.select();
      return;
    }
    const button = target instanceof Element && target.closest("button[data-copy-target]");
    if (button) { copy(button); }
  });

  // --- confirm ---------------------------------------------------------------------------------
  let box = null;

  function confirmDialog() {
    if (box) { return box; }
    box = document.createElement("dialog");
    box.id = "confirm-dialog";
    box.setAttribute("role", "alertdialog");
    box.setAttribute("aria-labelledby", "confirm-dialog-title");
    box.setAttribute("aria-describedby", "confirm-dialog-question");
    box.innerHTML = `
      <article>
        <header><strong id="confirm-dialog-title">Are you sure?</strong></header>
        <p id="confirm-dialog-question"></p>
        <footer class="confirm-buttons">
          <button type="button" class="secondary" data-confirm-cancel>Cancel</button>
          <button type="button" class="danger" data-confirm-accept>Confirm</button>
        </footer>
      </article>`;
    box.querySelector("[data-confirm-cancel]").addEventListener("click", () => box.close("cancel"));
    box.querySelector("[data-confirm-accept]").addEventListener("click", () => box.close("confirm"));
    // A click on the backdrop (outside the article) cancels, as Escape does natively.
    box.addEventListener("click", (event) => { if (event.target === box) { box.close("cancel"); } });
    document.body.appendChild(box);
    return box;
  }

  function ask(form, submitter) {
    const dialog = confirmDialog();
    const returnTo = submitter || document.activeElement;
    dialog.querySelector("#confirm-dialog-question").textContent = form.dataset.confirm;
    dialog.querySelector("[data-confirm-accept]").textContent = form.dataset.confirmButton || "Confirm";
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      if (dialog.returnValue === "confirm") {
        form.dataset.confirmed = "yes";
        form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      } else if (returnTo && returnTo.isConnected) {
        returnTo.focus();
      }
    }, { once: true });
    dialog.showModal();
    // The safe choice has the focus: Enter or Space right away does nothing destructive.
    dialog.querySelector("[data-confirm-cancel]").focus();
  }

  // Capture phase: runs before htmx's own submit handler, so an unconfirmed form never leaves.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) { return; }
    if (form.dataset.confirmed === "yes") {
      delete form.dataset.confirmed;
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    ask(form, event.submitter);
  }, true);

  // --- options that follow another choice -----------------------------------------------------
  function followChoice(select) {
    const leader = document.getElementById(select.dataset.optionsFollow);
    if (!leader) { return; }
    const chosen = leader.value;
    select.querySelectorAll("optgroup[data-label]").forEach((group) => {
      const offered = chosen !== "" && group.dataset.label === chosen;
      group.hidden = !offered;
      group.disabled = !offered;
    });
    const current = select.selectedOptions[0];
    if (current && current.parentElement instanceof HTMLOptGroupElement
        && current.parentElement.disabled) {
      select.value = "";
    }
    const offered = select.querySelectorAll("optgroup:not([disabled]) option");
    if (offered.length === 1) { select.value = offered[0].value; }
  }

  document.addEventListener("change", (event) => {
    const leader = event.target;
    if (!(leader instanceof HTMLSelectElement) || !leader.id) { return; }
    document.querySelectorAll(`select[data-options-follow="${CSS.escape(leader.id)}"]`)
      .forEach(followChoice);
  });

  document.addEventListener("DOMContentLoaded", () => enhance(document));
  // (An htmx swap may bring copy buttons or reason codes anywhere on the page.)
  document.addEventListener("htmx:afterSettle", () => enhance(document));
})();
