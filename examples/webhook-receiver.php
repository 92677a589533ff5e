<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Receives depot's webhooks: verifies Depot-Signature, dedupes on Depot-Delivery.
 *
 * A standalone example of the endpoint a Moodle plugin offers depot (see
 * docs/CONTRACT.md, "Webhooks"). It runs as it is under `php -S`, configured
 * from the environment:
 *
 * - DEPOT_WEBHOOK_SECRETS: the webhook secrets, one per line (during a
 *   rotation, the old one and the new one);
 * - DEPOT_WEBHOOK_STATE: a directory that remembers the deliveries handled;
 * - DEPOT_WEBHOOK_INBOX: a file each new event is appended to, as JSON lines.
 *
 * In a plugin, the secrets come from get_config(), the deliveries handled are
 * a table with a unique index on the delivery id (inserted in the same
 * transaction as the event's work), and the inbox is that work.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/** How far a delivery's t may lie from this server's clock, in seconds. */
const LOCAL_DEPOT_WEBHOOK_TOLERANCE = 300;

/**
 * Whether a delivery is signed with one of the secrets, at a time close to now.
 *
 * @param string $body the raw request body, exactly as received (php://input)
 * @param string $header the Depot-Signature header: t=<unix seconds>,v1=<hex>[,v1=<hex>...]
 * @param string[] $secrets the webhook secrets; during a rotation, old and new
 * @param int $now this server's clock, in unix seconds
 * @param int $tolerance how far t may lie from $now, in seconds
 * @return bool
 */
function local_depot_webhook_verify(string $body, string $header, array $secrets, int $now,
        int $tolerance = LOCAL_DEPOT_WEBHOOK_TOLERANCE): bool {
    $timestamp = null;
    $signatures = [];
    foreach (explode(',', $header) as $part) {
        [$name, $value] = array_pad(explode('=', trim($part), 2), 2, '');
        if ($name === 't' && preg_match('/^[0-9]{1,12}$/', $value)) {
            $timestamp = $value;
        } else if ($name === 'v1' && preg_match('/^[0-9a-f]{64}$/', $value)) {
            $signatures[] = $value;
        }
    }
    // A t far from now is a replay, or a clock that is off: refused either way.
    if ($timestamp === null || abs($now - (int) $timestamp) > $tolerance) {
        return false;
    }
    $valid = false;
    foreach ($secrets as $secret) {
        // The key is the secret's bytes; the message is t, a dot and the body's bytes, as sent.
        $expected = hash_hmac('sha256', $timestamp . '.' . $body, $secret);
        foreach ($signatures as $signature) {
            // Every pair is compared, in constant time: the answer's timing tells nothing.
            $valid = hash_equals($expected, $signature) || $valid;
        }
    }
    return $valid;
}

/**
 * Notes a delivery as handled; false when it was noted before (depot sends a delivery again until it gets a 2xx).
 *
 * @param string $deliveryid the Depot-Delivery header
 * @param string $statedir where handled deliveries are noted
 * @return bool
 */
function local_depot_webhook_first_time(string $deliveryid, string $statedir): bool {
    $file = $statedir . '/' . hash('sha256', $deliveryid);
    // Mode x creates the file or fails when it exists: two requests cannot both be first.
    $handle = @fopen($file, 'x');
    if ($handle !== false) {
        fclose($handle);
        return true;
    }
    if (file_exists($file)) {
        return false;
    }
    throw new RuntimeException('cannot note deliveries in ' . $statedir);
}

/**
 * The event's work; here, appending it to the inbox.
 *
 * @param array $event the decoded body: event, taskId, jobId, operation, result or error, attempt, timestamp
 * @param string $deliveryid the Depot-Delivery header
 * @param string $inbox the file events are appended to
 */
function local_depot_webhook_handle(array $event, string $deliveryid, string $inbox): void {
    $line = json_encode(['delivery' => $deliveryid, 'event' => $event], JSON_UNESCAPED_SLASHES) . "\n";
    if (file_put_contents($inbox, $line, FILE_APPEND | LOCK_EX) === false) {
        throw new RuntimeException('cannot write to ' . $inbox);
    }
}

/**
 * Answers the request with a status and a short text, and ends it.
 *
 * @param int $status the HTTP status
 * @param string $text the body; none when empty
 */
function local_depot_webhook_answer(int $status, string $text): void {
    http_response_code($status);
    if ($text !== '') {
        header('Content-Type: text/plain; charset=utf-8');
        echo $text, "\n";
    }
    exit;
}

$secrets = array_values(array_filter(array_map(
    fn(string $line): string => rtrim($line, "\r"),
    explode("\n", (string) getenv('DEPOT_WEBHOOK_SECRETS'))
), fn(string $secret): bool => $secret !== ''));
$statedir = (string) getenv('DEPOT_WEBHOOK_STATE');
$inbox = (string) getenv('DEPOT_WEBHOOK_INBOX');

if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    local_depot_webhook_answer(405, 'POST only');
}
// The raw body: the signature covers these bytes, not what a parser makes of them.
$body = (string) file_get_contents('php://input');
$header = (string) ($_SERVER['HTTP_DEPOT_SIGNATURE'] ?? '');
$deliveryid = (string) ($_SERVER['HTTP_DEPOT_DELIVERY'] ?? '');

if (!local_depot_webhook_verify($body, $header, $secrets, time())) {
    local_depot_webhook_answer(401, 'signature missing, wrong or too old');
}
$event = json_decode($body, true);
if ($deliveryid === '' || !is_array($event)) {
    local_depot_webhook_answer(400, 'not a depot delivery');
}
if (!local_depot_webhook_first_time($deliveryid, $statedir)) {
    // Handled before: a 2xx, or depot keeps sending it.
    local_depot_webhook_answer(200, 'already handled');
}
try {
    local_depot_webhook_handle($event, $deliveryid, $inbox);
} catch (Throwable $e) {
    // Not handled after all: the next retry may be.
    unlink($statedir . '/' . hash('sha256', $deliveryid));
    local_depot_webhook_answer(500, 'not handled');
}
local_depot_webhook_answer(204, '');
