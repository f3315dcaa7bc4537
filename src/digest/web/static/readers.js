// Readers' pages: fill in the time zone the browser reports, where scripts run. Without
// scripts the sign-up stores no zone (the publication's is used) and the preference page's
// list still works: this only saves the reader a choice.
(function () {
  "use strict";
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    return;
  }
  document.querySelectorAll("[data-guess=browser]").forEach(function (field) {
    if (field.tagName === "SELECT") {
      var known = Array.prototype.some.call(field.options, function (o) {
        return o.value === zone;
      });
      if (known && !field.value) field.value = zone;
    } else if (!field.value) {
      field.value = zone;
    }
  });
})();
