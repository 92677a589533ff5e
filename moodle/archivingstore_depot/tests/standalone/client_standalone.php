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
 * depot_client against a real `depot serve` and worker (CONTRACT §9): store, retrieve, delete,
 * retention refusal, another site's archive, a wrong token, depot down.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \archivingstore_depot\local\client\depot_client
 * @covers     \archivingstore_depot\local\client\curl_transport
 */
final class client_standalone extends TestCase {
    /** @var string[] Files to remove after each test. */
    private array $files = [];

    protected function tearDown(): void {
        foreach ($this->files as $file) {
            @unlink($file);
        }
    }

    private function file(int $size, string $seed): string {
        return $this->files[] = \depot_env::file($size, $seed);
    }

    private function target(): string {
        return $this->files[] = sys_get_temp_dir() . '/depot-php-got-' . bin2hex(random_bytes(6));
    }

    public function test_store_retrieve_delete(): void {
        $client = \depot_env::client();
        $path = $this->file(3 * 1024 * 1024 + 17, 'store-retrieve-delete');
        $sha256 = hash_file('sha256', $path);
        $result = $client->store($path, [
            'name' => 'quiz-12-attempts.tar.gz',
            'driver' => \depot_env::get('DEPOT_DRIVER'),
            'sha256' => $sha256,
            'size' => filesize($path),
            'metadata' => ['siteId' => \depot_env::get('DEPOT_SITE'), 'courseId' => '12', 'userIds' => ['34', '56']],
        ]);
        $this->assertSame($sha256, $result['sha256']);
        $this->assertSame(filesize($path), $result['size']);
        $this->assertSame(\depot_env::get('DEPOT_DRIVER'), $result['ref']['driver']);
        $this->assertStringEndsWith('/quiz-12-attempts.tar.gz', $result['ref']['key']);
        $this->assertSame(['34', '56'], $result['metadata']['userIds']);
        $this->assertSame(\depot_env::get('DEPOT_SITE'), $result['metadata']['siteId']);

        $target = $this->target();
        $got = $client->download($result['ref']['driver'], $result['ref']['key'], $target, $sha256);
        $this->assertSame(['size' => filesize($path), 'sha256' => $sha256], $got);
        $this->assertFileEquals($path, $target);

        $deleted = $client->delete($result['ref']['driver'], $result['ref']['key']);
        $this->assertTrue($deleted['deleted']);
        try {
            $client->delete($result['ref']['driver'], $result['ref']['key']);
            $this->fail('a second delete succeeded');
        } catch (depot_exception $e) {
            $this->assertSame('not_found', $e->depotcode);
        }
        try {
            $client->download($result['ref']['driver'], $result['ref']['key'], $target);
            $this->fail('a deleted archive was downloaded');
        } catch (depot_exception $e) {
            $this->assertSame('not_found', $e->depotcode);
            $this->assertSame(404, $e->httpstatus);
            $this->assertFileDoesNotExist($target);
        }
    }

    public function test_a_download_that_does_not_match_the_recorded_sha256_is_refused_and_removed(): void {
        $client = \depot_env::client();
        $path = $this->file(4096, 'recorded');
        $result = $client->store($path, ['name' => 'recorded.bin', 'metadata' => ['siteId' => \depot_env::get('DEPOT_SITE')]]);
        $target = $this->target();
        try {
            $client->download($result['ref']['driver'], $result['ref']['key'], $target, str_repeat('0', 64));
            $this->fail('a download that is not the recorded archive was accepted');
        } catch (depot_exception $e) {
            $this->assertSame('integrity', $e->depotcode);
            $this->assertFileDoesNotExist($target);
        }
    }

    public function test_a_declared_sha256_that_does_not_match_the_bytes_queues_nothing(): void {
        $client = \depot_env::client();
        $path = $this->file(1000, 'declared');
        try {
            $client->submit_store($path, ['name' => 'declared.bin', 'sha256' => str_repeat('a', 64),
                'metadata' => ['siteId' => \depot_env::get('DEPOT_SITE')]]);
            $this->fail('depot accepted bytes that do not match the declared sha256');
        } catch (depot_exception $e) {
            $this->assertSame('integrity', $e->depotcode);
            $this->assertSame(400, $e->httpstatus);
        }
    }

    public function test_retention_refuses_the_delete(): void {
        $client = \depot_env::client();
        $path = $this->file(2048, 'retained');
        $result = $client->store($path, [
            'name' => 'retained.bin',
            'metadata' => ['siteId' => \depot_env::get('DEPOT_SITE')],
            'retainUntil' => \depot_env::in(86400),
            'deleteAfter' => \depot_env::in(86400),
        ]);
        try {
            $client->delete($result['ref']['driver'], $result['ref']['key']);
            $this->fail('an archive under retention was deleted');
        } catch (depot_exception $e) {
            $this->assertSame('retention', $e->depotcode);
            $this->assertNotNull($e->taskid);
        }
        // Still there, whole.
        $got = $client->download($result['ref']['driver'], $result['ref']['key'], $this->target());
        $this->assertSame(hash_file('sha256', $path), $got['sha256']);
    }

    public function test_another_sites_token_cannot_read_or_delete_this_sites_archive(): void {
        $path = $this->file(512, 'scoped');
        $result = \depot_env::client()->store($path, ['name' => 'scoped.bin', 'metadata' => ['siteId' => \depot_env::get('DEPOT_SITE')]]);
        $other = \depot_env::client(\depot_env::get('DEPOT_OTHER_TOKEN'));
        foreach (['download', 'delete'] as $operation) {
            try {
                if ($operation === 'download') {
                    $other->download($result['ref']['driver'], $result['ref']['key'], $this->target());
                } else {
                    $other->delete($result['ref']['driver'], $result['ref']['key']);
                }
                $this->fail("another site's token could {$operation} this site's archive");
            } catch (depot_exception $e) {
                $this->assertSame('not_found', $e->depotcode, "{$operation}: {$e->getMessage()}");
            }
        }
        $this->assertSame(hash_file('sha256', $path), \depot_env::client()->download($result['ref']['driver'],
            $result['ref']['key'], $this->target())['sha256']);
    }

    public function test_the_scope_forces_this_sites_id_onto_every_store(): void {
        $path = $this->file(300, 'forced');
        $result = \depot_env::client()->store($path, ['name' => 'forced.bin']);
        $this->assertSame(\depot_env::get('DEPOT_SITE'), $result['metadata']['siteId']);
    }

    public function test_a_wrong_token_is_auth(): void {
        $client = \depot_env::client('not-a-token-' . bin2hex(random_bytes(8)));
        foreach (['drivers', 'store'] as $call) {
            try {
                $call === 'drivers' ? $client->drivers() : $client->store($this->file(10, 'wrong'), ['name' => 'x.bin']);
                $this->fail("{$call} with a wrong token succeeded");
            } catch (depot_exception $e) {
                $this->assertSame(401, $e->httpstatus, $call);
                $this->assertSame('auth', $e->depotcode, $call);
                $this->assertStringNotContainsString('not-a-token', $e->getMessage());
            }
        }
    }

    public function test_depot_down_is_unavailable(): void {
        $client = \depot_env::client(null, \depot_env::get('DEPOT_DOWN_URL'));
        foreach (['drivers', 'store', 'download'] as $call) {
            try {
                match ($call) {
                    'drivers' => $client->drivers(),
                    'store' => $client->store($this->file(10, 'down'), ['name' => 'x.bin']),
                    'download' => $client->download('local', '2026/01/01/x/x.bin', $this->target()),
                };
                $this->fail("{$call} succeeded with depot down");
            } catch (depot_exception $e) {
                $this->assertSame('unavailable', $e->depotcode, $call);
                $this->assertSame(0, $e->httpstatus, $call);
            }
        }
    }

    public function test_drivers_lists_the_configured_driver_with_its_type_and_space(): void {
        $drivers = \depot_env::client()->drivers();
        $names = array_column($drivers, 'name');
        $this->assertContains(\depot_env::get('DEPOT_DRIVER'), $names);
        $entry = $drivers[array_search(\depot_env::get('DEPOT_DRIVER'), $names, true)];
        $this->assertSame('filesystem', $entry['type']);
        $this->assertIsBool($entry['default']);
        $this->assertArrayHasKey('healthy', $entry);
        $this->assertArrayHasKey('lastCheck', $entry);
        $this->assertArrayHasKey('space', $entry);
    }
}
