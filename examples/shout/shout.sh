#!/bin/sh
# A choreography service in plain shell, with mosquitto_sub and mosquitto_pub only.
# It consumes alert.raised.v1 and emits alert.shouted.v1, a fact type of its own, as a
# CloudEvent that names its cause (causationid) and keeps its chain (correlationid).
# Settings: the same CHOREO_MQTT_* variables as every service; its account is "shout".
set -eu
here=$(dirname "$0")
host=${CHOREO_MQTT_HOST:-127.0.0.1}
port=${CHOREO_MQTT_PORT:-1883}
user=${CHOREO_MQTT_USERNAME:-shout}
# Note: -P puts the password on the command line, where other local users can see it in
# the process list; run this on a host of its own, or wrap the clients in a container.
auth="-h $host -p $port -u $user -P ${CHOREO_MQTT_PASSWORD:?set CHOREO_MQTT_PASSWORD}"
manifest() {
    printf '{"name":"shout","status":"%s","consumes":["alert.raised.v1"],"emits":["alert.shouted.v1"],%s}' \
        "$1" '"reads":["events/alert.raised.v1/+"],"version":"1"'
}

# Announce the new type's schema (the ACL lets only shout write this topic), then say online.
mosquitto_pub $auth -V 5 -q 1 -r -t choreo/schemas/alert.shouted.v1/shout -f "$here/alert.shouted.v1.json"
mosquitto_pub $auth -V 5 -q 1 -r -t choreo/services/shout -m "$(manifest online)"

field() {  # the first string value of a JSON key in a one-line payload
    printf '%s' "$2" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
}

# A persistent session (-c, session expiry 1 h): alerts raised while shout is away wait for it.
mosquitto_sub $auth -V 5 -q 1 -c -x 3600 -i shout -t 'events/alert.raised.v1/+' -F '%p' \
    --will-topic choreo/services/shout --will-retain --will-qos 1 --will-payload "$(manifest offline)" |
while IFS= read -r alert; do
    id=$(field id "$alert")
    subject=$(field subject "$alert")
    name=$(field alert "$alert")
    fact=$(printf '{"specversion":"1.0","id":"shout-%s","source":"service/shout","type":"alert.shouted.v1",' "$id")
    fact=$fact$(printf '"subject":"%s","time":"%s","datacontenttype":"application/json",' "$subject" "$(field time "$alert")")
    fact=$fact$(printf '"correlationid":"%s","causationid":"%s",' "$(field correlationid "$alert")" "$id")
    fact=$fact$(printf '"data":{"alert":"%s","shout":"%s!!!"}}' "$name" "$(printf '%s' "$name" | tr a-z A-Z)")
    mosquitto_pub $auth -V 5 -q 1 -t "events/alert.shouted.v1/$subject" -m "$fact"
done
