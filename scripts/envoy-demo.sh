#!/usr/bin/env bash
# The Envoy demo's REST calls, with curl. Start the stack first (docker compose up --build -d),
# then:
#   scripts/envoy-demo.sh            declare the service "web", start a rollout of v2, show how to watch
#   scripts/envoy-demo.sh declare    PUT /v1/services/web: versions v1 and v2 at the backends' addresses
#   scripts/envoy-demo.sh rollout    POST /v1/rollouts: a shadow phase (v2 gets a copy of every request, judged
#                                    by analysis, no user sees it), then 10% → 30% → 60% of traffic, a pause
#   scripts/envoy-demo.sh status     GET /v1/rollouts/web
#   scripts/envoy-demo.sh promote    finish the rollout: v2 gets 100% and becomes the stable version
#   scripts/envoy-demo.sh rollback   100% back to v1 at once; answers when Envoy has applied it
#   scripts/envoy-demo.sh watch      print the commands that show what is going on
# Environment: SLUICE (default http://localhost:8080), ENVOY (default http://localhost:10000),
# ENVOY_ADMIN (default http://localhost:9901), SLUICE_API_TOKEN (when Sluice runs with --api-token).
# Walkthrough: docs/envoy.md.
set -euo pipefail

SLUICE=${SLUICE:-http://localhost:8080}
ENVOY=${ENVOY:-http://localhost:10000}
ENVOY_ADMIN=${ENVOY_ADMIN:-http://localhost:9901}

# Where the backends listen: their fixed addresses on the compose network (docker-compose.yml,
# ipv4_address). Sluice hands these to Envoy over EDS, which takes IP addresses, not names.
BACKEND_V1=10.213.7.11
BACKEND_V2=10.213.7.12
BACKEND_PORT=8000

# api METHOD PATH [JSON]: one REST call; prints the answer, fails on an HTTP error.
api() {
  local args=(-sS --fail-with-body -X "$1" "$SLUICE$2")
  [[ -n ${3:-} ]] && args+=(-H 'content-type: application/json' --data "$3")
  [[ -n ${SLUICE_API_TOKEN:-} ]] && args+=(-H "authorization: Bearer $SLUICE_API_TOKEN")
  curl "${args[@]}"
  echo
}

declare_service() {
  # domains: the Host headers that reach this service through Envoy. "web" is what the load
  # generator sends; "localhost:*" lets `curl localhost:10000` from your machine reach it.
  api PUT /v1/services/web "{
    \"versions\": {
      \"v1\": { \"endpoints\": [ { \"address\": \"$BACKEND_V1\", \"port\": $BACKEND_PORT } ] },
      \"v2\": { \"endpoints\": [ { \"address\": \"$BACKEND_V2\", \"port\": $BACKEND_PORT } ] }
    },
    \"stable\": \"v1\",
    \"domains\": [\"web\", \"web:*\", \"localhost\", \"localhost:*\"]
  }"
}

start_rollout() {
  # First a shadow phase: Envoy copies every request to v2 and throws its answers away, while
  # analysis judges v2 on those copies (Envoy's stats, streamed to Sluice every 5 s) for four
  # 15 s windows. A failing v2 is rolled back here, before any user depended on it. Then the
  # copies stop and real traffic moves: each weight holds 30 s after Envoy acknowledged it; the
  # last pause waits for you (promote or rollback). Testers sending "x-canary: true" reach v2
  # at any weight, and one x-user keeps one version while the weights move (sticky; needs
  # Envoy 1.36+).
  api POST /v1/rollouts '{
    "service": "web",
    "canary": "v2",
    "steps": [
      { "setMirror": { "percent": 100 } },
      { "analysis": { "interval": "15s", "count": 4, "minRequests": 50, "inconclusiveLimit": 2,
                      "metrics": [ { "name": "success",   "successRate":     { "min": 0.95 } },
                                   { "name": "vs-stable", "successRateDrop": { "max": 0.02 } },
                                   { "name": "slower",    "latencyRise":     { "maxMs": 50 } } ] } },
      { "setMirror": { "percent": 0 } },
      { "setWeight": 10 }, { "pause": { "duration": "30s" } },
      { "setWeight": 30 }, { "pause": { "duration": "30s" } },
      { "setWeight": 60 }, { "pause": {} }
    ],
    "headerRoutes": [ { "name": "testers", "match": [ { "header": "x-canary", "exact": "true" } ] } ],
    "sticky": { "header": "x-user" }
  }'
}

watch_hints() {
  cat <<EOF

Watch it:
  docker compose logs -f loadgen                    # share of answers per version, every 5 s
  curl -s $SLUICE/v1/rollouts/web                  # phase, step, weights, mirrorPercent, analysis, history
  curl -s $ENVOY_ADMIN/stats | grep -E '^cluster\.web-v[12]\.upstream_rq_(2xx|5xx|completed)'
                                                    # during the shadow phase web-v2 counts the copies
  curl -s $SLUICE/v1/fleet                         # Envoy as Sluice sees it: versions sent/ACKed, last NACK
  curl -s '$ENVOY_ADMIN/config_dump?resource=dynamic_route_configs'   # the routes Envoy holds
  curl -s $ENVOY_ADMIN/clusters | grep -E 'web-v[12]::10'              # endpoints and their health
  curl -s -H 'x-canary: true' $ENVOY/                # a tester: always v2
  for i in 1 2 3 4 5; do curl -s -H 'x-user: alice' $ENVOY/; done   # one user, one version
  open $SLUICE/ in a browser                        # the dashboard

Make the canary bad, then send everything back to v1:
  V2_ERROR_RATE=0.5 docker compose up -d backend-v2
  scripts/envoy-demo.sh rollback
A canary that is bad from the start is caught in the shadow phase, by Sluice itself:
  scripts/envoy-demo.sh rollback; V2_ERROR_RATE=0.3 docker compose up -d backend-v2
  scripts/envoy-demo.sh rollout                     # RolledBack by analysis; the load generator never sees v2
Or finish it: scripts/envoy-demo.sh promote
EOF
}

case ${1:-all} in
  all) declare_service && start_rollout && watch_hints ;;
  declare) declare_service ;;
  rollout) start_rollout ;;
  status) api GET /v1/rollouts/web ;;
  promote) api POST /v1/rollouts/web/promote '{"full": true}' ;;
  rollback) api POST '/v1/rollouts/web/rollback?wait=ack&timeout=10s' '{"reason": "rolled back from envoy-demo.sh"}' ;;
  watch) watch_hints ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
