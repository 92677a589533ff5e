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

namespace local_depot\local;

use PHPUnit\Framework\TestCase;

/**
 * archive_area's write-once filing, reads, deletes, pages and sums, against the stand-ins.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \local_depot\local\archive_area
 */
final class archive_area_standalone extends TestCase {
    /** @var int Context of the service user, whose drafts are uploaded. */
    private const USERCONTEXT = 5;
    /** @var int Context of the course. */
    private const COURSECONTEXT = 142;
    /** @var string A taskId. */
    private const TASK = '01938f2c-7a10-7cc3-8b5e-0c1d2e3f4a5b';

    /** @var \moodle_database */
    private $db;
    /** @var \file_storage */
    private $fs;
    /** @var archive_area */
    private $area;
    /** @var int */
    private $nextdraft = 1000;

    protected function setUp(): void {
        $this->db = new \moodle_database();
        $this->fs = new \file_storage($this->db);
        $this->area = new archive_area($this->fs, $this->db, self::COURSECONTEXT, 'archive');
    }

    /** A draft area holding $bytes, as webservice/upload.php leaves it. */
    private function draft(string $bytes): int {
        $itemid = $this->nextdraft++;
        $this->fs->create_file_from_string(['contextid' => self::USERCONTEXT, 'component' => 'user', 'filearea' => 'draft',
            'itemid' => $itemid, 'filepath' => '/', 'filename' => 'archive.bin'], $bytes);
        return $itemid;
    }

    /** depot's manifest of $bytes stored as $name. */
    private function manifest(string $name, string $bytes, array $extra = []): string {
        return json_encode([
            'name' => $name,
            'key' => '2026/12/01/' . self::TASK . '/' . $name,
            'size' => strlen($bytes),
            'sha256' => hash('sha256', $bytes),
            'storedAt' => '2026-12-01T10:00:00.000Z',
            'taskId' => self::TASK,
            'metadata' => (object) ['courseId' => '12'],
        ] + $extra);
    }

    private function store(string $name, string $bytes, ?string $manifest = null): array {
        return $this->area->store_draft(self::USERCONTEXT, $this->draft($bytes), '/2026/12/01/' . self::TASK . '/',
            archive_name::to_filename($name), hash('sha256', $bytes), $manifest ?? $this->manifest($name, $bytes));
    }

    private function drafts(): array {
        return array_filter($this->db->files, function($f) {
            return $f->filearea === 'draft';
        });
    }

    public function test_files_archive_and_manifest_together_and_empties_the_draft(): void {
        $outcome = $this->store('exam.zip', 'exam bytes');
        $this->assertSame('created', $outcome['status']);
        $this->assertSame($this->manifest('exam.zip', 'exam bytes'), $outcome['manifest']);
        $this->assertSame('exam bytes', $outcome['file']->get_content());
        $this->assertSame(archive_area::ITEM_ARCHIVE, $outcome['file']->get_itemid());
        $found = $this->area->get('/2026/12/01/' . self::TASK . '/', 'exam.zip');
        $this->assertSame($this->manifest('exam.zip', 'exam bytes'), $found['manifest']);
        $this->assertSame([], $this->drafts());
        $this->assertSame(1, $this->db->commits);
    }

    public function test_a_taken_path_is_exists_with_the_manifest_there_and_nothing_is_replaced(): void {
        $this->store('exam.zip', 'first bytes');
        $again = $this->store('exam.zip', 'first bytes');
        $this->assertSame('exists', $again['status']);
        $this->assertSame($this->manifest('exam.zip', 'first bytes'), $again['manifest']);
        $other = $this->store('exam.zip', 'other bytes');
        $this->assertSame('exists', $other['status']);
        $this->assertSame($this->manifest('exam.zip', 'first bytes'), $other['manifest']);
        $this->assertSame('first bytes', $other['file']->get_content());
        $this->assertCount(2, array_filter($this->db->files, function($f) {
            return $f->component === 'local_depot';
        }));
        $this->assertSame([], $this->drafts());
    }

    public function test_another_writers_file_is_exists_without_manifest(): void {
        $this->fs->create_file_from_string(['contextid' => self::COURSECONTEXT, 'component' => 'local_depot',
            'filearea' => 'archive', 'itemid' => 0, 'filepath' => '/2026/12/01/' . self::TASK . '/', 'filename' => 'exam.zip'],
            'theirs');
        $outcome = $this->store('exam.zip', 'ours');
        $this->assertSame('exists', $outcome['status']);
        $this->assertSame('', $outcome['manifest']);
        $this->assertSame('theirs', $outcome['file']->get_content());
    }

    public function test_a_failure_after_the_archive_rolls_the_archive_back(): void {
        // A manifest without its archive (planted): the manifest's insert fails after the archive's succeeded.
        $this->fs->create_file_from_string(['contextid' => self::COURSECONTEXT, 'component' => 'local_depot',
            'filearea' => 'archive', 'itemid' => 1, 'filepath' => '/2026/12/01/' . self::TASK . '/', 'filename' => 'exam.zip'],
            '{}');
        try {
            $this->store('exam.zip', 'ours');
            $this->fail('expected the creation failure');
        } catch (\stored_file_creation_exception $e) {
            $this->assertSame('storedfilenotcreated', $e->errorcode);
        }
        $this->assertNull($this->area->get('/2026/12/01/' . self::TASK . '/', 'exam.zip'));
        $this->assertSame(1, $this->db->rollbacks);
        $this->assertSame([], $this->drafts());
    }

    public function test_bytes_other_than_the_manifest_says_are_refused_and_nothing_is_filed(): void {
        $itemid = $this->draft('short');
        try {
            $this->area->store_draft(self::USERCONTEXT, $itemid, '/2026/12/01/' . self::TASK . '/', 'exam.zip',
                hash('sha256', 'longer bytes'), $this->manifest('exam.zip', 'longer bytes'));
            $this->fail('expected checksummismatch');
        } catch (\moodle_exception $e) {
            $this->assertSame('checksummismatch', $e->errorcode);
        }
        $this->assertNull($this->area->get('/2026/12/01/' . self::TASK . '/', 'exam.zip'));
        $this->assertSame([], $this->drafts());
    }

    public function test_a_manifest_of_another_key_is_refused(): void {
        $bytes = 'exam bytes';
        $this->expectException(\moodle_exception::class);
        $this->expectExceptionMessage('local_depot/invalidmanifest');
        $this->store('exam.zip', $bytes, $this->manifest('other.zip', $bytes));
    }

    public function test_a_draft_area_without_exactly_one_file_is_refused(): void {
        $this->expectExceptionMessage('local_depot/draftnotfound');
        $this->area->store_draft(self::USERCONTEXT, 4242, '/2026/12/01/' . self::TASK . '/', 'exam.zip',
            hash('sha256', 'x'), $this->manifest('exam.zip', 'x'));
    }

    public function test_names_moodle_would_clean_are_refused_not_altered(): void {
        foreach (["it's.zip", 'a:b.zip', 'a&b.zip', '..', ''] as $filename) {
            try {
                archive_area::require_location('/2026/12/01/' . self::TASK . '/', $filename);
                $this->fail("accepted {$filename}");
            } catch (\invalid_parameter_exception $e) {
                $this->assertSame('invalidparameter', $e->errorcode);
            }
        }
        foreach (['/2026/12/01/', '/2026/12/01/' . self::TASK, '/2026/12/01/a:b/', '/2026/12/01/../'] as $filepath) {
            try {
                archive_area::require_location($filepath, 'exam.zip');
                $this->fail("accepted {$filepath}");
            } catch (\invalid_parameter_exception $e) {
                $this->assertSame('invalidparameter', $e->errorcode);
            }
        }
        $this->expectException(\invalid_parameter_exception::class);
        archive_area::require_location('/2026/12/01/' . self::TASK . '/', str_repeat('x', 256));
    }

    public function test_delete_removes_archive_and_manifest_and_says_when_there_was_none(): void {
        $this->store('exam.zip', 'exam bytes');
        $this->assertTrue($this->area->delete('/2026/12/01/' . self::TASK . '/', 'exam.zip'));
        $this->assertSame([], array_filter($this->db->files, function($f) {
            return $f->component === 'local_depot';
        }));
        $this->assertFalse($this->area->delete('/2026/12/01/' . self::TASK . '/', 'exam.zip'));
    }

    public function test_pages_follow_the_filing_order_and_the_prefix(): void {
        $names = ['a.zip', 'b.zip', 'c.zip', 'd.zip', 'e.zip'];
        foreach ($names as $name) {
            $this->store($name, "bytes of {$name}");
        }
        $seen = [];
        $after = 0;
        do {
            $page = $this->area->list_page('/2026/12/', $after, 2);
            foreach ($page['entries'] as $entry) {
                $seen[] = $entry['file']->get_filename();
                $this->assertSame($this->manifest($entry['file']->get_filename(), 'bytes of ' . $entry['file']->get_filename()),
                    $entry['manifest']);
            }
            $after = $page['next'];
        } while ($after !== 0);
        $this->assertSame($names, $seen);
        $this->assertSame([], $this->area->list_page('/2025/', 0, 100)['entries']);
        $this->assertCount(5, $this->area->list_page('/', 0, 100)['entries']);
    }

    public function test_used_bytes_counts_archives_and_manifests(): void {
        $this->assertSame(0, $this->area->used_bytes());
        $this->store('exam.zip', 'exam bytes');
        $this->assertSame(strlen('exam bytes') + strlen($this->manifest('exam.zip', 'exam bytes')), $this->area->used_bytes());
    }
}
