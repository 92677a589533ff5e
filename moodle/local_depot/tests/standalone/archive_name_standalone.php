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
 * Archive names to Moodle file names: the table depot's driver is tested against too.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \local_depot\local\archive_name
 */
final class archive_name_standalone extends TestCase {
    public function test_the_shared_table(): void {
        $table = json_decode(file_get_contents(__DIR__ . '/../fixtures/filenames.json'), true);
        $this->assertNotEmpty($table);
        $filenames = [];
        foreach ($table as $row) {
            $filename = archive_name::to_filename($row['name']);
            $this->assertSame($row['filename'], $filename, $row['name']);
            // Moodle keeps every such file name as it is.
            $this->assertSame($filename, clean_param($filename, PARAM_FILE), $row['name']);
            $filenames[] = $filename;
        }
        $this->assertSame(count($filenames), count(array_unique($filenames)));
    }
}
