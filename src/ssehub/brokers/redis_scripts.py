"""The Lua scripts of the Redis broker: each is one round trip, atomic in Redis.

Keys of a namespace ``ns`` all carry the hash tag ``{ns}`` (one Redis Cluster slot):

``{ns}:epoch``   hash ``epoch`` (µs since 1970 when it began), ``start`` (the last seq before it)
``{ns}:seq``     the namespace-wide event counter
``{ns}:log``     the feed: every event, entry id ``<seq>-0``, fields ``e`` epoch, ``t`` topics
                 (joined by LF, which a topic name cannot contain), ``b`` the encoded body
``{ns}:t:<topic>``  one stream per topic, entry id ``<seq>-0``, field ``b``: its history

The epoch check (``CHECK``) runs first in the publish and sync scripts. A new, larger epoch
begins when the epoch is missing (Redis lost everything), older than the caller's (restored
from an old backup), or the same while ``{ns}:seq`` is below the highest seq the caller saw
(Redis lost its last writes, e.g. AOF ``everysec``): ids never go backwards and never name two
events. ``start`` lets readers skip entries older than the epoch.
"""

from __future__ import annotations

__all__ = ["HEAD", "PUBLISH", "SYNC", "WARM"]

# ARGV[1] known epoch, ARGV[2] highest seq the caller saw in it. KEYS[1] epoch, KEYS[2] seq.
CHECK = """
local known_epoch = tonumber(ARGV[1])
local known_seq = tonumber(ARGV[2])
local ep = redis.call('HMGET', KEYS[1], 'epoch', 'start')
local epoch = tonumber(ep[1])
local start = tonumber(ep[2] or '0')
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
if (not epoch) or epoch < known_epoch or (epoch == known_epoch and seq < known_seq) then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local floor = math.max(known_epoch, epoch or 0) + 1
  if now < floor then now = floor end
  epoch = now
  start = seq
  redis.call('HSET', KEYS[1], 'epoch', string.format('%.0f', epoch), 'start', string.format('%.0f', seq))
end
local epoch_text = string.format('%.0f', epoch)
"""

# KEYS: epoch, seq, feed, topic streams…  ARGV: known epoch, known seq, feed maxlen, K (topic
# keys), K maxlens, then per event: topics joined by LF, body, n, n indexes (1-based) of its keys.
# Returns {epoch, seq, seq, …}.
PUBLISH = CHECK + """
local k = tonumber(ARGV[4])
local out = {epoch_text}
local i = 5 + k
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  seq = redis.call('INCR', KEYS[2])
  local id = string.format('%.0f', seq) .. '-0'
  for j = 1, n do
    local key = tonumber(ARGV[i + 2 + j])
    redis.call('XADD', KEYS[3 + key], 'MAXLEN', '~', ARGV[4 + key], id, 'b', ARGV[i + 1])
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], id, 'e', epoch_text, 't', ARGV[i], 'b', ARGV[i + 1])
  out[#out + 1] = seq
  i = i + 3 + n
end
return out
"""

# KEYS: epoch, seq, feed. ARGV: known epoch, known seq.
# Returns {epoch, start, seq, seq of the feed's oldest entry (0 when empty)}: the feed holds every
# seq, so a reader at position p missed trimmed entries when that oldest seq is above p + 1.
SYNC = CHECK + """
local first = '0'
local oldest = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
if #oldest > 0 then first = string.match(oldest[1][1], '^(%d+)') end
return {epoch_text, string.format('%.0f', start), string.format('%.0f', seq), first}
"""

# KEYS: epoch, seq. Returns {epoch, seq} as they are (read only: no epoch check).
HEAD = """
return {redis.call('HGET', KEYS[1], 'epoch') or '0', redis.call('GET', KEYS[2]) or '0'}
"""

# KEYS: topic stream, epoch. ARGV: the newest id to return (``<seq>-0``, or ``(<seq>-0`` for
# "below it"), count. One page of a history load (``RedisBroker.history`` calls it with a small
# count, page after page, until the byte or event bound: no single call scans a whole big topic).
# Returns {epoch, start, trimmed, deleted, entries newest first}. ``trimmed`` and ``deleted`` are
# computed only when the page is short (the stream's oldest end was reached; else '-1'):
# ``trimmed`` is a seq below which entries may have been removed by MAXLEN (0: none ever were;
# trimming does not record what it removed, so it is the oldest kept seq - 1), ``deleted`` the
# stream's max-deleted-entry-id (XDEL).
WARM = """
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', ARGV[2])
local trimmed, deleted = '-1', '-1'
if #entries < tonumber(ARGV[2]) then
  trimmed, deleted = '0', '0'
  if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    local f = {}
    for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
    if tonumber(f['entries-added']) > tonumber(f['length']) and f['first-entry'] then
      trimmed = string.format('%.0f', tonumber(string.match(f['first-entry'][1], '^(%d+)')) - 1)
    end
    deleted = string.match(f['max-deleted-entry-id'] or '0', '^(%d+)')
  end
end
local ep = redis.call('HMGET', KEYS[2], 'epoch', 'start')
return {ep[1] or '0', ep[2] or '0', trimmed, deleted, entries}
"""
