// Sort and filter the units of a layer page: the grid's children carry their numbers as data-*.
function atlasUpdate() {
  var grid = document.getElementById("grid");
  var key = document.getElementById("sort").value;
  var label = document.getElementById("label").value;
  var curves = document.getElementById("detectors").checked;
  var least = document.getElementById("selective").value;
  least = least === "" ? -Infinity : Number(least);
  var units = Array.prototype.slice.call(grid.children);
  units.sort(function (a, b) {
    if (key === "channel") { return Number(a.dataset.channel) - Number(b.dataset.channel); }
    var d = Number(b.dataset[key]) - Number(a.dataset[key]);
    return d !== 0 ? d : Number(a.dataset.channel) - Number(b.dataset.channel);
  });
  var shown = 0;
  units.forEach(function (u) {
    var on = (label === "all" || u.dataset.label === label) && (!curves || u.dataset.detector === "1")
      && Number(u.dataset.selectivity) >= least;
    u.style.display = on ? "" : "none";
    shown += on ? 1 : 0;
    grid.appendChild(u);
  });
  document.getElementById("count").textContent = shown + " of " + units.length + " units";
}
window.addEventListener("DOMContentLoaded", function () {
  if (!document.getElementById("grid")) { return; }
  document.getElementById("sort").addEventListener("change", atlasUpdate);
  document.getElementById("label").addEventListener("change", atlasUpdate);
  document.getElementById("detectors").addEventListener("change", atlasUpdate);
  document.getElementById("selective").addEventListener("input", atlasUpdate);
  atlasUpdate();
});
