// orchcap's page glue: htmx settings and toasts. Everything here degrades to plain links and forms.
document.addEventListener("DOMContentLoaded", () => {
  if (window.htmx) {
    // Invalid forms come back as 422 with their errors: swap them in like a 200.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true, error: false },
      // A conflict (e.g. a case someone else decided) re-renders with the reason and the draft kept.
      { code: "409", swap: true, error: false },
      { code: "[45]..", swap: false, error: true },
    ];
  }
  fadeToasts(document);
});

document.addEventListener("htmx:afterSettle", (event) => fadeToasts(event.target));

function fadeToasts(root) {
  root.querySelectorAll(".toast:not(.fade)").forEach((toast) => {
    setTimeout(() => {
      toast.classList.add("fade");
      setTimeout(() => toast.remove(), 500);
    }, 5000);
  });
}
