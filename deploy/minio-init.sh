#!/bin/sh
# Run by the minio-init service: create the landing bucket and send every new object in it to the API.
# Events are queued on disk in the minio container (/events) while the API is unreachable, and MinIO sends
# `Authorization: Bearer $MEDIAMESH_API_TOKEN` with each (the token must not contain spaces).
set -eu

mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/$LANDING_BUCKET"

mc admin config set local notify_webhook:api \
    endpoint="http://api:8000/events/s3" \
    auth_token="$MEDIAMESH_API_TOKEN" \
    queue_dir="/events" \
    queue_limit="100000"
# Notification targets are read when the server starts.
mc admin service restart local
until mc ready local; do sleep 1; done

arn="arn:minio:sqs::api:webhook"
if ! mc event ls "local/$LANDING_BUCKET" "$arn" | grep -q "$arn"; then
    mc event add "local/$LANDING_BUCKET" "$arn" --event put
fi
echo "landing bucket $LANDING_BUCKET: new objects are announced to http://api:8000/events/s3"
