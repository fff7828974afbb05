// Reads an iCalendar file on stdin and prints, as JSON, what ical.js (the parser
// Thunderbird uses) makes of each VEVENT: uid, summary, status, start and end, and for a
// recurring one every occurrence whose start is in [from, to) (the two arguments, ISO 8601
// instants), and the ORGANIZER's CN and URI. Times are UTC ISO instants, plus the wall-clock fields ical.js read ("wall").
// The file's VTIMEZONEs are registered first, so TZID times go through them: ical.js has
// no time zone database of its own (only UTC), and an unknown TZID would stay floating.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const [from, to] = process.argv.slice(2).map((text) => Date.parse(text) / 1000);
if (Number.isNaN(from) || Number.isNaN(to)) {
  console.error("usage: node expand.mjs FROM TO < calendar.ics");
  process.exit(2);
}
const MAX_STEPS = 20000; // a series has at most 1000 occurrences: more is a runaway rule

const root = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));
const zones = [];
for (const vtimezone of root.getAllSubcomponents("vtimezone")) {
  const zone = new ICAL.Timezone(vtimezone);
  ICAL.TimezoneService.register(zone, zone.tzid);
  zones.push(zone.tzid);
}

function time(value) {
  return {
    utc: new Date(value.toUnixTime() * 1000).toISOString(),
    wall: value.toString(),
    zone: value.zone ? value.zone.tzid : null,
  };
}

const events = root.getAllSubcomponents("vevent").map((vevent) => {
  const event = new ICAL.Event(vevent);
  const found = {
    uid: event.uid,
    summary: event.summary,
    status: vevent.getFirstPropertyValue("status"),
    organizer: vevent.hasProperty("organizer")
      ? { cn: vevent.getFirstProperty("organizer").getParameter("cn"),
          uri: vevent.getFirstPropertyValue("organizer") }
      : null,
    start: time(event.startDate),
    end: vevent.hasProperty("dtend") ? time(event.endDate) : null,
    occurrences: null,
  };
  if (event.isRecurring()) {
    found.occurrences = [];
    const iterator = event.iterator();
    let steps = 0;
    for (let next = iterator.next(); next; next = iterator.next()) {
      if (++steps > MAX_STEPS) throw new Error(`${event.uid}: over ${MAX_STEPS} occurrences`);
      const details = event.getOccurrenceDetails(next);
      const start = details.startDate.toUnixTime();
      if (start >= to) break;
      if (start >= from) {
        found.occurrences.push({ start: time(details.startDate), end: time(details.endDate) });
      }
    }
  }
  return found;
});
process.stdout.write(JSON.stringify({ zones, events }, null, 1) + "\n");
