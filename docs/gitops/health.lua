-- Argo CD health of inferencefleet.io InferencePools and FleetQuotas (one script, both kinds).
-- It reads the conditions the operator writes; "for long" compares lastTransitionTime with the clock,
-- so it needs Lua's os and string libraries: set useOpenLibs for both kinds (docs/gitops.md).
local GRACE_SECONDS = 600 -- SLOMet or OverBudget True/False this long makes the resource Degraded

local function condition(status, wanted)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

-- Seconds since an RFC 3339 UTC time as the operator writes it (2026-01-02T03:04:05Z).
local function seconds_since(timestamp)
  local y, mo, d, h, mi, s = string.match(timestamp or "", "^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)")
  if y == nil then
    return 0
  end
  local now = os.time()
  local utc_offset = now - os.time(os.date("!*t", now))
  local at = os.time({year = y, month = mo, day = d, hour = h, min = mi, sec = s}) + utc_offset
  return now - at
end

local function lasting(c)
  return math.floor(seconds_since(c.lastTransitionTime) / 60)
end

local function health(status, message)
  return {status = status, message = message}
end

local function pool_health(obj, status)
  local spec_valid = condition(status, "SpecValid")
  if spec_valid ~= nil and spec_valid.status == "False" then
    return health("Degraded", "spec invalid: " .. (spec_valid.message or ""))
  end
  local slo = condition(status, "SLOMet")
  if slo ~= nil and slo.status == "False" and seconds_since(slo.lastTransitionTime) >= GRACE_SECONDS then
    return health("Degraded", "p99 latency over the SLO for " .. lasting(slo) .. " minutes: " .. (slo.message or ""))
  end
  local ready = condition(status, "Ready")
  if ready == nil or ready.status ~= "True" then
    return health("Progressing", ready and ready.message or "waiting for the first fleet tick")
  end
  local wanted = status.desiredReplicas or 0
  local have = status.readyReplicas or 0
  if have < wanted then
    return health("Progressing", have .. " of " .. wanted .. " replicas ready")
  end
  return health("Healthy", ready.message or "ready")
end

local function quota_health(obj, status)
  local ready = condition(status, "Ready")
  if ready ~= nil and ready.status == "False" then
    return health("Degraded", "spec invalid: " .. (ready.message or ""))
  end
  local over = condition(status, "OverBudget")
  if over ~= nil and over.status == "True" and seconds_since(over.lastTransitionTime) >= GRACE_SECONDS then
    return health("Degraded", "over budget for " .. lasting(over) .. " minutes: " .. (over.message or ""))
  end
  if ready == nil or ready.status ~= "True" then
    return health("Progressing", "waiting for the first fleet tick")
  end
  return health("Healthy", ready.message or "ready")
end

local status = obj.status
if status == nil or (status.observedGeneration or 0) < (obj.metadata.generation or 0) then
  return health("Progressing", "waiting for the operator to observe this generation")
end
if obj.kind == "FleetQuota" then
  return quota_health(obj, status)
end
return pool_health(obj, status)
