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

use PHPUnit\Framework\TestCase;

/**
 * depot_client's checks on answers a healthy depot does not give (so they cannot be provoked from a real one):
 * a download whose bytes differ from the declared digests, an answer with no digest at all, a transfer cut
 * short, a task that never finishes. A scripted transport plays depot here.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \archivingstore_depot\local\client\depot_client
 */
final class client_checks_standalone extends TestCase {
    /**
     * A transport that answers every request with the next scripted response.
     *
     * @param response[] $responses The answers, in order.
     * @param array $requests Receives [method, url, headers] of each request.
     * @return transport
     */
    private function scripted(array $responses, array &$requests = []): transport {
        return new class($responses, $requests) implements transport {
            public function __construct(private array $responses, private array &$requests) {
            }
            public function send(string $method, string $url, array $headers, $body = null, $sink = null): response {
                $this->requests[] = [$method, $url, $headers];
                $response = array_shift($this->responses);
                if ($sink !== null) {
                    fwrite($sink, $response->body);
                    return new response($response->status, $response->headers, '', $response->error);
                }
                return $response;
            }
        };
    }

    private function content(string $bytes, array $headers, int $status = 200): response {
        return new response($status, $headers, $bytes);
    }

    public function test_the_key_is_sent_with_its_slashes_and_each_segment_encoded(): void {
        $bytes = 'abc';
        $sha = hash('sha256', $bytes);
        $requests = [];
        $client = new depot_client('http://depot.test/', 't0ken', $this->scripted([
            $this->content($bytes, ['x-depot-sha256' => $sha, 'content-length' => '3']),
        ], $requests));
        $target = tempnam(sys_get_temp_dir(), 'depot-php-');
        $client->download('worm', '2026/12/03/0193-task/quiz 12 #1.tar.gz', $target);
        unlink($target);
        $this->assertSame('http://depot.test/v1/archives/worm/2026/12/03/0193-task/quiz%2012%20%231.tar.gz/content', $requests[0][1]);
        $this->assertContains('Authorization: Bearer t0ken', $requests[0][2]);
    }

    /**
     * @dataProvider wrong_downloads
     */
    public function test_a_download_that_does_not_verify_is_integrity_and_leaves_no_file(array $headers, string $why): void {
        $client = new depot_client('http://depot.test', 't', $this->scripted([$this->content('the bytes', $headers)]));
        $target = tempnam(sys_get_temp_dir(), 'depot-php-');
        try {
            $client->download('local', 'k/x.bin', $target);
            $this->fail("accepted: {$why}");
        } catch (depot_exception $e) {
            $this->assertSame('integrity', $e->depotcode, $why);
            $this->assertFileDoesNotExist($target, $why);
        }
    }

    /**
     * Answers that must be refused.
     *
     * @return array[]
     */
    public static function wrong_downloads(): array {
        $right = hash('sha256', 'the bytes');
        $wrong = hash('sha256', 'other bytes');
        $b64 = fn(string $hex) => 'sha-256=:' . base64_encode(hex2bin($hex)) . ':';
        return [
            'no digest' => [['content-length' => '9'], 'no digest at all'],
            'hex differs' => [['x-depot-sha256' => $wrong], 'X-Depot-Sha256 of other bytes'],
            'repr differs' => [['x-depot-sha256' => $right, 'repr-digest' => $b64($wrong)], 'Repr-Digest of other bytes'],
            'cut short' => [['x-depot-sha256' => $right, 'content-length' => '900'], 'fewer bytes than Content-Length'],
        ];
    }

    public function test_repr_digest_alone_verifies(): void {
        $bytes = random_bytes(1000);
        $digest = 'sha-256=:' . base64_encode(hash('sha256', $bytes, true)) . ':';
        $client = new depot_client('http://depot.test', 't', $this->scripted([$this->content($bytes, ['repr-digest' => $digest])]));
        $target = tempnam(sys_get_temp_dir(), 'depot-php-');
        $this->assertSame(['size' => 1000, 'sha256' => hash('sha256', $bytes)], $client->download('local', 'k/x', $target));
        $this->assertSame($bytes, file_get_contents($target));
        unlink($target);
    }

    public function test_a_task_that_does_not_finish_in_time_is_unavailable_and_names_the_task(): void {
        $running = new response(200, [], json_encode(['ok' => true, 'taskId' => 't-1', 'state' => 'active']));
        $client = new depot_client('http://depot.test', 't', $this->scripted(array_fill(0, 100, $running)), 0, fn() => null);
        try {
            $client->wait('t-1');
            $this->fail('waited for ever');
        } catch (depot_exception $e) {
            $this->assertSame('unavailable', $e->depotcode);
            $this->assertSame('t-1', $e->taskid);
        }
    }

    public function test_a_completed_state_without_its_result_is_polled_again(): void {
        $early = new response(200, [], json_encode(['ok' => true, 'taskId' => 't-3', 'state' => 'completed']));
        $done = new response(200, [], json_encode(['ok' => true, 'taskId' => 't-3', 'state' => 'completed',
            'result' => ['ref' => ['driver' => 'local', 'key' => 'k']]]));
        $client = new depot_client('http://depot.test', 't', $this->scripted([$early, $done]), 60, fn() => null);
        $this->assertSame(['ref' => ['driver' => 'local', 'key' => 'k']], $client->wait('t-3'));
    }

    public function test_a_failed_task_carries_its_code_and_message(): void {
        $failed = new response(200, [], json_encode(['ok' => true, 'taskId' => 't-2', 'state' => 'failed',
            'error' => ['code' => 'retention', 'message' => 'under retention until 2027-01-01T00:00:00Z']]));
        $client = new depot_client('http://depot.test', 't', $this->scripted([$failed]));
        try {
            $client->wait('t-2');
            $this->fail('a failed task was taken as done');
        } catch (depot_exception $e) {
            $this->assertSame('retention', $e->depotcode);
            $this->assertStringContainsString('2027-01-01', $e->getMessage());
        }
    }

    public function test_an_answer_without_json_error_maps_by_status(): void {
        foreach ([401 => 'auth', 413 => 'no_space', 502 => 'unavailable', 418 => 'internal'] as $status => $code) {
            $client = new depot_client('http://depot.test', 't', $this->scripted([new response($status, [], '<html>proxy</html>')]));
            try {
                $client->drivers();
                $this->fail("HTTP {$status} was taken as success");
            } catch (depot_exception $e) {
                $this->assertSame($code, $e->depotcode, "HTTP {$status}");
            }
        }
    }
}
