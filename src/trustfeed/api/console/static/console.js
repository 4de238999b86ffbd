// trustfeed console: small progressive enhancements; every form also works without script.
"use strict";

// Reveal in place: POST the reveal (the server records it in the ledger) and only
// then unblur, keeping the reviewer's scroll position. On any failure the form
// is submitted normally, so the server's answer (an error page) is shown.
function enhanceReveal(form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`reveal refused: ${response.status}`);
      unblur(document.getElementById(form.dataset.figure), form);
    } catch (error) {
      form.submit();
    }
  });
}

function unblur(figure, form) {
  figure.classList.remove("blurred");
  figure.dataset.revealed = "true";
  const video = figure.querySelector("video");
  if (video) video.controls = true;
  const done = document.createElement("p");
  done.className = "muted";
  done.setAttribute("role", "status");
  done.textContent = "Revealed — recorded in the audit ledger.";
  form.replaceWith(done);
}

// Choosing a policy proposes its default action (the moderator may still change it).
function enhanceDecision(form) {
  const policy = form.querySelector("select[name=policy_id]");
  const action = form.querySelector("select[name=action]");
  if (!policy || !action) return;
  policy.addEventListener("change", () => {
    const option = policy.selectedOptions[0];
    if (option && option.dataset.action) action.value = option.dataset.action;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.reveal").forEach(enhanceReveal);
  document.querySelectorAll("form.decision").forEach(enhanceDecision);
});
