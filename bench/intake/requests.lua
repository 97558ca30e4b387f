-- Replays pre-signed Rankr webhooks (one per line: id, timestamp, signature, body, tab-separated),
-- each thread taking every n-th line so no webhook id is sent twice.
local lines = {}
local index, step = 0, 1

function setup(thread)
  thread:set("offset", #threads_seen)
  table.insert(threads_seen, thread)
end
threads_seen = {}

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
  index = offset or 0
  step = tonumber(args[2]) or 1
end

function request()
  index = index + step
  local line = lines[(index % #lines) + 1]
  local id, ts, sig, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
  return wrk.format("POST", "/webhooks/rankr", {
    ["content-type"] = "application/json",
    ["webhook-id"] = id,
    ["webhook-timestamp"] = ts,
    ["webhook-signature"] = sig,
  }, body)
end
