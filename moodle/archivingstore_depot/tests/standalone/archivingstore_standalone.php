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

namespace archivingstore_depot;

use archivingstore_depot\local\job_facts;
use local_archiving\exception\storage_exception;
use local_archiving\type\storage_tier;
use PHPUnit\Framework\TestCase;

/**
 * The storage driver as local_archiving calls it, on stand-ins of stored_file, file_storage, file_handle and
 * local_archiving's base class (stand_ins.php), with a real depot behind it.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \archivingstore_depot\archivingstore
 * @covers     \archivingstore_depot\local\job_facts
 */
final class archivingstore_standalone extends TestCase {
    /** @var string[] Files to remove after each test. */
    private array $files = [];

    protected function setUp(): void {
        $GLOBALS['STANDIN_CONFIG']['archivingstore_depot'] = [
            'url' => \depot_env::get('DEPOT_URL'),
            'token' => \depot_env::get('DEPOT_TOKEN'),
            'siteid' => \depot_env::get('DEPOT_SITE'),
            'driver' => \depot_env::get('DEPOT_DRIVER'),
            'retention' => 'both',
        ];
    }

    protected function tearDown(): void {
        foreach ($this->files as $file) {
            @unlink($file);
        }
        $GLOBALS['STANDIN_CONFIG'] = [];
    }

    /**
     * A store on the real depot with the given facts about job 42.
     *
     * @param array $facts What job_facts reports.
     * @param string|null $token Another token.
     * @param string|null $url Another URL.
     * @return archivingstore
     */
    private function store(array $facts = [], ?string $token = null, ?string $url = null): archivingstore {
        $facts += ['courseid' => 12, 'cmid' => 77, 'userids' => [34, 56, 78], 'timecreated' => time(), 'retention' => null];
        $jobfacts = new class($facts) extends job_facts {
            public function __construct(private array $facts) {
            }
            public function for_job(int $jobid): array {
                return $this->facts;
            }
        };
        return new archivingstore(\depot_env::client($token, $url), $jobfacts, get_config('archivingstore_depot'));
    }

    private function moodle_file(int $size, string $name): \stored_file {
        return new \stored_file($this->files[] = \depot_env::file($size, $name), $name, 'application/gzip');
    }

    private function fileinfo(int $itemid, string $filename): \stdClass {
        return (object) ['contextid' => 5, 'component' => 'local_archiving', 'filearea' => 'filestore_cache',
            'itemid' => $itemid, 'filepath' => '/', 'filename' => $filename];
    }

    public function test_store_records_depots_ref_and_moodles_sha256_with_the_jobs_metadata(): void {
        $file = $this->moodle_file(2 * 1024 * 1024 + 3, 'quiz-77-attempts.tar.gz');
        $handle = $this->store()->store(42, $file, '/course-12/quiz-77/');
        $this->assertSame('depot', $handle->archivingstorename);
        $this->assertSame(42, $handle->jobid);
        $this->assertSame('quiz-77-attempts.tar.gz', $handle->filename);
        $this->assertSame('course-12/quiz-77', $handle->filepath);
        $this->assertSame($file->get_filesize(), $handle->filesize);
        $this->assertSame(hash('sha256', $file->get_content()), $handle->sha256sum);
        $this->assertSame('application/gzip', $handle->mimetype);
        [$driver, $key] = archivingstore::ref_of($handle);
        $this->assertSame(\depot_env::get('DEPOT_DRIVER'), $driver);
        $this->assertMatchesRegularExpression('~^\d{4}/\d{2}/\d{2}/[^/]+/quiz-77-attempts\.tar\.gz$~', $key);

        // What depot keeps beside the archive, found as a GDPR request would find it (CONTRACT §8).
        $listed = $this->list(['userIds' => '56', 'jobId' => '42']);
        $entry = current(array_filter($listed, fn($a) => $a['ref']['key'] === $key));
        $this->assertNotFalse($entry, 'the archive is not listed under one of its users');
        $this->assertSame([
            'siteId' => \depot_env::get('DEPOT_SITE'),
            'jobId' => '42',
            'userIds' => ['34', '56', '78'],
            'component' => 'local_archiving',
            'filepath' => 'course-12/quiz-77',
            'courseId' => '12',
            'cmid' => '77',
        ], $entry['metadata']);
        $this->assertArrayNotHasKey('retainUntil', $entry);
        $this->assertArrayNotHasKey('deleteAfter', $entry);
    }

    public function test_retrieve_creates_the_moodle_file_from_the_given_fileinfo(): void {
        $file = $this->moodle_file(1024 * 1024, 'retrieve-me.zip');
        $store = $this->store();
        $handle = $store->store(42, $file, 'job-42');
        $copy = $store->retrieve($handle, $this->fileinfo($handle->id, 'retrieve-me.zip'));
        $this->assertSame($file->get_content(), $copy->get_content());
        $this->assertSame(['contextid' => 5, 'component' => 'local_archiving', 'filearea' => 'filestore_cache',
            'itemid' => $handle->id, 'filepath' => '/', 'filename' => 'retrieve-me.zip'], $copy->record);
    }

    public function test_delete_then_not_found_is_done_unless_strict(): void {
        $store = $this->store();
        $handle = $store->store(42, $this->moodle_file(5000, 'gone.bin'), 'job-42');
        $store->delete($handle);
        $store->delete($handle); // Already gone: done.
        try {
            $store->delete($handle, true);
            $this->fail('a strict delete of a missing archive passed');
        } catch (storage_exception $e) {
            $this->assertSame('depotnotfound', $e->errorcode);
        }
        try {
            $store->retrieve($handle, $this->fileinfo($handle->id, 'gone.bin'));
            $this->fail('a deleted archive was retrieved');
        } catch (storage_exception $e) {
            $this->assertSame('depotnotfound', $e->errorcode);
        }
    }

    public function test_the_jobs_retention_goes_to_depot_and_refuses_an_early_delete(): void {
        $created = time() - 60;
        $store = $this->store(['retention' => 86400 * 30, 'timecreated' => $created]);
        $handle = $store->store(43, $this->moodle_file(3000, 'kept.bin'), 'job-43');
        [, $key] = archivingstore::ref_of($handle);
        $entry = current(array_filter($this->list(['jobId' => '43']), fn($a) => $a['ref']['key'] === $key));
        $until = gmdate('Y-m-d\TH:i:s', $created + 86400 * 30);
        $this->assertStringStartsWith($until, $entry['retainUntil']);
        $this->assertStringStartsWith($until, $entry['deleteAfter']);
        try {
            $store->delete($handle);
            $this->fail('an archive under retention was deleted');
        } catch (storage_exception $e) {
            $this->assertSame('depotretention', $e->errorcode);
            $this->assertSame('archivingstore_depot', $e->module);
        }
    }

    public function test_retention_fields_follow_the_setting(): void {
        $facts = ['retention' => 3600, 'timecreated' => 1767225600]; // 2026-01-01T00:00:00Z.
        $this->assertSame(['retainUntil' => '2026-01-01T01:00:00Z', 'deleteAfter' => '2026-01-01T01:00:00Z'],
            archivingstore::retention_fields($facts, 'both'));
        $this->assertSame(['deleteAfter' => '2026-01-01T01:00:00Z'], archivingstore::retention_fields($facts, 'deleteafter'));
        $this->assertSame([], archivingstore::retention_fields($facts, 'none'));
        $this->assertSame([], archivingstore::retention_fields(['retention' => null, 'timecreated' => 1], 'both'));
        $this->assertSame(86400, job_facts::retention_of((object) ['archive_autodelete' => 1, 'archive_retention_time' => '86400']));
        $this->assertNull(job_facts::retention_of((object) ['archive_autodelete' => 0, 'archive_retention_time' => 86400]));
        $this->assertNull(job_facts::retention_of(null));
    }

    public function test_availability_space_and_tier_come_from_depots_driver_list(): void {
        $store = $this->store();
        $this->assertTrue($store->is_available());
        $this->assertIsInt($store->get_free_bytes());
        $this->assertSame('filesystem', get_config('archivingstore_depot', 'drivertype'));
        $this->assertSame(storage_tier::REMOTE_FAST, archivingstore::get_storage_tier());
        $this->assertSame(storage_tier::REMOTE_SLOW, archivingstore::tier_for_type('tape-robot'));
        set_config('storagetier', 'REMOTE_SLOW', 'archivingstore_depot');
        $this->assertSame(storage_tier::REMOTE_SLOW, archivingstore::get_storage_tier());
        $this->assertTrue(archivingstore::supports_retrieve());
        $this->assertTrue(archivingstore::is_ready());
    }

    public function test_depot_down_or_a_wrong_token_is_a_clear_storage_exception(): void {
        $down = $this->store([], null, \depot_env::get('DEPOT_DOWN_URL'));
        $this->assertFalse($down->is_available());
        $this->assertNull($down->get_free_bytes());
        try {
            $down->store(42, $this->moodle_file(100, 'down.bin'), 'job-42');
            $this->fail('stored with depot down');
        } catch (storage_exception $e) {
            $this->assertSame('depotunavailable', $e->errorcode);
        }
        $wrong = $this->store([], 'wrong-' . bin2hex(random_bytes(8)));
        $this->assertFalse($wrong->is_available());
        try {
            $wrong->store(42, $this->moodle_file(100, 'wrong.bin'), 'job-42');
            $this->fail('stored with a wrong token');
        } catch (storage_exception $e) {
            $this->assertSame('depotauth', $e->errorcode);
        }
    }

    /**
     * GET /v1/archives with metadata filters, as this site's token sees it.
     *
     * @param array $meta Metadata to match.
     * @return array[] The entries.
     */
    private function list(array $meta): array {
        $query = http_build_query(array_combine(array_map(fn($k) => "meta.{$k}", array_keys($meta)), $meta));
        $handle = curl_init(\depot_env::get('DEPOT_URL') . '/v1/archives?' . $query);
        curl_setopt_array($handle, [CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HTTPHEADER => ['Authorization: Bearer ' . \depot_env::get('DEPOT_TOKEN')]]);
        $body = curl_exec($handle);
        $status = curl_getinfo($handle, CURLINFO_RESPONSE_CODE);
        curl_close($handle);
        $this->assertSame(200, $status, (string) $body);
        return json_decode($body, true)['archives'];
    }
}
