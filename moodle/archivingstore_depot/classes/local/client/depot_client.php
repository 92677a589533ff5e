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

namespace archivingstore_depot\local\client;

/**
 * depot's HTTP API (CONTRACT §6, §9) for a producer without a shared volume: plain PHP, no Moodle.
 *
 * Every answer depot gives is JSON (`{ ok: false, error: { code, message, field? } }` on failure)
 * except an archive's content. Credentials never appear in messages.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class depot_client {
    /** @var string depot's base URL, without a trailing slash. */
    private string $baseurl;

    /** @var callable Sleeps a number of microseconds (replaceable in tests). */
    private $sleep;

    /**
     * Creates a client.
     *
     * @param string $baseurl depot serve's URL, e.g. https://depot.example.org.
     * @param string $token The bearer token (a named, scoped token for this site).
     * @param transport $transport How requests are sent.
     * @param int $waittimeout Seconds to wait for a queued task to finish.
     * @param callable|null $sleep usleep replacement.
     */
    public function __construct(
        string $baseurl,
        /** @var string The bearer token. */
        private readonly string $token,
        /** @var transport How requests are sent. */
        private readonly transport $transport,
        /** @var int Seconds to wait for a queued task to finish. */
        private readonly int $waittimeout = 600,
        ?callable $sleep = null
    ) {
        $this->baseurl = rtrim($baseurl, '/');
        $this->sleep = $sleep ?? 'usleep';
    }

    /**
     * Queues a store with the file sent along (multipart/form-data: part `task`, then part `file`).
     *
     * @param string $path Local file to send; read from disk while sent.
     * @param array $task The store task without `source` (name, sha256, size, metadata, retainUntil, …).
     * @param array $options Job options (priority, delay); sent only when not empty.
     * @return array depot's 202 answer: taskId, jobId, size, sha256 (of the bytes it received).
     * @throws depot_exception
     */
    public function submit_store(string $path, array $task, array $options = []): array {
        if (!is_readable($path)) {
            throw new depot_exception('source_unavailable', 'the file to store cannot be read');
        }
        $envelope = ['operation' => 'store', 'task' => $task];
        if ($options) {
            $envelope['options'] = $options;
        }
        $fields = [
            'task' => json_encode($envelope, JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR),
            'file' => new \CURLFile($path, 'application/octet-stream', $task['name'] ?? basename($path)),
        ];
        return $this->json('POST', '/v1/tasks', $fields, [202]);
    }

    /**
     * Stores a file and waits for depot's result.
     *
     * @param string $path Local file to send.
     * @param array $task The store task without `source`.
     * @param array $options Job options.
     * @return array The task's result: taskId, ref {driver, key}, name, size, sha256, storedAt, metadata, …
     * @throws depot_exception
     */
    public function store(string $path, array $task, array $options = []): array {
        $accepted = $this->submit_store($path, $task, $options);
        return $this->wait((string) $accepted['taskId']);
    }

    /**
     * Queues a JSON task (delete, check, retrieve) and waits for its result.
     *
     * @param string $operation The operation.
     * @param array $task The task.
     * @return array The task's result.
     * @throws depot_exception
     */
    public function run(string $operation, array $task): array {
        $body = json_encode(['operation' => $operation, 'task' => $task], JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR);
        $accepted = $this->json('POST', '/v1/tasks', $body, [202], ['Content-Type: application/json']);
        return $this->wait((string) $accepted['taskId']);
    }

    /**
     * Deletes an archive; depot refuses one under retention ('retention') and reports a missing one ('not_found').
     *
     * @param string $driver The archive's driver.
     * @param string $key The archive's key.
     * @return array The result: taskId, ref, deleted.
     * @throws depot_exception
     */
    public function delete(string $driver, string $key): array {
        return $this->run('delete', ['ref' => ['driver' => $driver, 'key' => $key]]);
    }

    /**
     * A task's state as GET /v1/tasks/:taskId shows it.
     *
     * @param string $taskid The task.
     * @return array ok, taskId, jobId, operation, state, attempts, result? (completed), error? (failed).
     * @throws depot_exception
     */
    public function task(string $taskid): array {
        return $this->json('GET', '/v1/tasks/' . rawurlencode($taskid), null, [200]);
    }

    /**
     * Polls a task until it has completed or failed, or the wait timeout has passed.
     *
     * @param string $taskid The task.
     * @return array The task's result.
     * @throws depot_exception The task's own error, or 'unavailable' when it did not finish in time.
     */
    public function wait(string $taskid): array {
        $deadline = microtime(true) + $this->waittimeout;
        $pause = 100000;
        while (true) {
            $state = $this->task($taskid);
            // A "completed" without its result is polled again: depot serve may read the state after the job
            // finished but the job itself before (seen with its first releases); the result follows.
            if (($state['state'] ?? '') === 'completed' && is_array($state['result'] ?? null)) {
                return $state['result'];
            }
            if (($state['state'] ?? '') === 'failed') {
                $error = (array) ($state['error'] ?? []);
                throw new depot_exception((string) ($error['code'] ?? 'internal'), (string) ($error['message'] ?? 'the task failed'),
                    200, isset($error['field']) ? (string) $error['field'] : null, $taskid);
            }
            if (microtime(true) + $pause / 1e6 > $deadline) {
                throw new depot_exception('unavailable', "task {$taskid} did not finish within {$this->waittimeout} s " .
                    '(state ' . ($state['state'] ?? 'unknown') . '); it may still finish', 0, null, $taskid);
            }
            ($this->sleep)($pause);
            $pause = min($pause * 2, 2000000);
        }
    }

    /**
     * Streams an archive into a local file and verifies it: the sha256 of the bytes received must equal
     * depot's X-Depot-Sha256 and Repr-Digest (CONTRACT §9) and, when given, the one recorded at store time.
     * The target is written only by this call; on any failure it is removed.
     *
     * @param string $driver The archive's driver.
     * @param string $key The archive's key (its slashes are sent as they are).
     * @param string $target Local file to write (created or truncated).
     * @param string|null $expectedsha256 The sha256 recorded when the archive was stored.
     * @return array size and sha256 of the file written.
     * @throws depot_exception 'integrity' on any mismatch, 'not_found', 'unavailable', …
     */
    public function download(string $driver, string $key, string $target, ?string $expectedsha256 = null): array {
        $segments = array_map('rawurlencode', explode('/', $key));
        $url = '/v1/archives/' . rawurlencode($driver) . '/' . implode('/', $segments) . '/content';
        $sink = fopen($target, 'w+b');
        if ($sink === false) {
            throw new depot_exception('internal', 'cannot write the download target');
        }
        try {
            $response = $this->transport->send('GET', $this->baseurl . $url, ['Authorization: Bearer ' . $this->token], null, $sink);
            if ($response->status !== 200) {
                rewind($sink);
                $body = (string) stream_get_contents($sink, 65536);
                throw $this->failure(new response($response->status, $response->headers, $body, $response->error));
            }
            rewind($sink);
            $hash = hash_init('sha256');
            $size = hash_update_stream($hash, $sink);
            $sha256 = hash_final($hash);
            fclose($sink);
            $sink = null;
            $this->verify_download($response, $sha256, $size, $expectedsha256);
            return ['size' => $size, 'sha256' => $sha256];
        } catch (\Throwable $e) {
            if ($sink !== null) {
                fclose($sink);
            }
            @unlink($target);
            throw $e;
        }
    }

    /**
     * The configured drivers as GET /v1/drivers lists them.
     *
     * @return array[] Each: name, type, default, healthy, lastCheck, space.
     * @throws depot_exception
     */
    public function drivers(): array {
        return $this->json('GET', '/v1/drivers', null, [200]);
    }

    /**
     * Compares a downloaded file with what depot and the producer say it must be.
     *
     * @param response $response depot's answer (headers).
     * @param string $sha256 Hex sha256 of the bytes received.
     * @param int $size Bytes received.
     * @param string|null $expected The sha256 recorded at store time.
     * @throws depot_exception 'integrity'
     */
    private function verify_download(response $response, string $sha256, int $size, ?string $expected): void {
        $declared = strtolower((string) $response->header('X-Depot-Sha256'));
        $digest = null;
        if (preg_match('/sha-256=:([A-Za-z0-9+\/=]+):/', (string) $response->header('Repr-Digest'), $m)) {
            $raw = base64_decode($m[1], true);
            $digest = $raw === false ? '' : bin2hex($raw);
        }
        $length = $response->header('Content-Length');
        if ($declared === '' && $digest === null) {
            throw new depot_exception('integrity', 'depot sent neither X-Depot-Sha256 nor Repr-Digest', 200);
        }
        if ($declared !== '' && $declared !== $sha256) {
            throw new depot_exception('integrity', "received sha256 {$sha256}, depot declared {$declared}", 200);
        }
        if ($digest !== null && $digest !== $sha256) {
            throw new depot_exception('integrity', "received sha256 {$sha256}, Repr-Digest says {$digest}", 200);
        }
        if ($length !== null && (int) $length !== $size) {
            throw new depot_exception('integrity', "received {$size} bytes, Content-Length said {$length}", 200);
        }
        if ($expected !== null && $expected !== '' && strtolower($expected) !== $sha256) {
            throw new depot_exception('integrity', "received sha256 {$sha256}, stored as {$expected}", 200);
        }
    }

    /**
     * Sends a request whose answer is JSON and returns it decoded.
     *
     * @param string $method GET or POST.
     * @param string $path Path below the base URL.
     * @param string|array|null $body Body.
     * @param int[] $expected Statuses that mean success.
     * @param string[] $extraheaders More headers.
     * @return array The decoded answer.
     * @throws depot_exception
     */
    private function json(string $method, string $path, $body, array $expected, array $extraheaders = []): array {
        $response = $this->transport->send($method, $this->baseurl . $path, array_merge($this->headers(), $extraheaders), $body);
        if (!in_array($response->status, $expected, true)) {
            throw $this->failure($response);
        }
        $decoded = json_decode($response->body, true);
        if (!is_array($decoded)) {
            throw new depot_exception('internal', "depot answered {$method} {$path} with no JSON", $response->status);
        }
        return $decoded;
    }

    /**
     * The exception for an answer that is not a success.
     *
     * @param response $response The answer.
     * @return depot_exception
     */
    private function failure(response $response): depot_exception {
        if ($response->status === 0) {
            return new depot_exception('unavailable', 'depot could not be reached: ' . $response->error);
        }
        $decoded = json_decode($response->body, true);
        $error = is_array($decoded) && is_array($decoded['error'] ?? null) ? $decoded['error'] : [];
        $code = (string) ($error['code'] ?? match (true) {
            $response->status === 401, $response->status === 403 => 'auth',
            $response->status === 404 => 'not_found',
            $response->status === 413 => 'no_space',
            $response->status >= 500 => 'unavailable',
            default => 'internal',
        });
        $message = (string) ($error['message'] ?? "HTTP {$response->status}");
        return new depot_exception($code, $message, $response->status, isset($error['field']) ? (string) $error['field'] : null);
    }

    /**
     * Headers every request carries.
     *
     * @return string[]
     */
    private function headers(): array {
        return ['Authorization: Bearer ' . $this->token, 'Accept: application/json'];
    }
}
