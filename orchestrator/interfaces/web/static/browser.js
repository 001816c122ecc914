// The shot browser's one script: open a shot's panel (server-rendered), seek the player to it, and follow the
// timeline's clicks to the shot under them. No framework, no network beyond this service.
"use strict";

function titleSection() {
  return document.querySelector("section.title");
}

async function openShot(index) {
  const section = titleSection();
  const panel = document.getElementById("panel");
  if (!section || !panel) return;
  const cell = section.querySelector(`.grid .shot[data-shot="${index}"]`);
  if (!cell) return;
  section.querySelectorAll(".grid .shot.selected").forEach((el) => el.classList.remove("selected"));
  cell.classList.add("selected");
  const video = section.querySelector("video");
  if (video) {
    const start = parseFloat(cell.dataset.start);
    const seek = () => { video.currentTime = start; };
    if (video.readyState >= 1) seek(); else video.addEventListener("loadedmetadata", seek, { once: true });
  }
  const response = await fetch(`/title/${section.dataset.asset}/shot/${index}`, { credentials: "same-origin" });
  panel.innerHTML = response.ok ? await response.text() : `<p class="error">shot ${index}: ${response.status}</p>`;
  panel.dataset.shot = String(index);
  if (location.hash !== `#shot-${index}`) history.replaceState(null, "", `#shot-${index}`);
}

function shotAt(seconds) {
  const cells = titleSection().querySelectorAll(".grid .shot");
  for (const cell of cells) {
    if (seconds >= parseFloat(cell.dataset.start) && seconds < parseFloat(cell.dataset.end)) {
      return cell.dataset.shot;
    }
  }
  return cells.length ? cells[cells.length - 1].dataset.shot : null;
}

document.addEventListener("click", (event) => {
  const section = titleSection();
  if (!section) return;
  const link = event.target.closest("a[data-shot]");
  if (link && !link.closest(".hit")) {
    event.preventDefault();
    openShot(link.dataset.shot);
    return;
  }
  const strip = event.target.closest("img.timeline");
  if (strip) {
    const box = strip.getBoundingClientRect();
    const margin = parseFloat(section.dataset.margin) * box.width / strip.naturalWidth;
    const share = (event.clientX - box.left - margin) / (box.width - 2 * margin);
    const shot = shotAt(Math.min(Math.max(share, 0), 0.999999) * parseFloat(section.dataset.duration));
    if (shot !== null) openShot(shot);
  }
});

function fromHash() {
  const match = /^#shot-(\d+)$/.exec(location.hash);
  if (match) openShot(match[1]);
}

window.addEventListener("hashchange", fromHash);
document.addEventListener("DOMContentLoaded", fromHash);
