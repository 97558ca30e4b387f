// Drag a Rankr field onto a GHL field: the mapping form below the lists is filled and sent, so
// dragging and the keyboard-usable form do exactly the same thing.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("map-form");
  if (!form) return;
  const rankr = document.getElementById("map-rankr");
  const ghl = document.getElementById("map-ghl");
  for (const item of document.querySelectorAll("li.draggable")) {
    item.addEventListener("dragstart", (event) => {
      event.dataTransfer.setData("text/plain", item.dataset.key);
      event.dataTransfer.effectAllowed = "link";
    });
  }
  for (const target of document.querySelectorAll("li.target")) {
    target.addEventListener("dragover", (event) => {
      event.preventDefault();
      target.classList.add("over");
    });
    target.addEventListener("dragleave", () => target.classList.remove("over"));
    target.addEventListener("drop", (event) => {
      event.preventDefault();
      target.classList.remove("over");
      const key = event.dataTransfer.getData("text/plain");
      if (!key) return;
      rankr.value = key;
      ghl.value = target.dataset.fieldId;
      form.requestSubmit();
    });
  }
});
