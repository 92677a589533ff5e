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
 * English strings of local_depot.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['checksummismatch'] = 'The uploaded file is not the one depot sent (its size or sha256 differs): nothing was filed.';
$string['depot:manage'] = 'File, read, list and delete depot\'s archives in a course';
$string['draftnotfound'] = 'The draft area does not hold exactly one uploaded file.';
$string['invalidmanifest'] = 'The manifest does not describe the archive it was sent with.';
$string['pluginname'] = 'depot archive storage';
$string['privacy:metadata:core_files'] = 'depot files archives that its producers send (for example quiz archives, which hold students\' attempts) into a course\'s file area, each with a manifest that may name the course and the users the archive concerns. Which people an archive concerns is known to its producer and to depot\'s catalog, not to this plugin: data requests about an archive\'s contents are answered there.';
$string['privacy:metadata:depot'] = 'depot, the archive storage service that files and reads archives through this plugin\'s web service functions.';
$string['privacy:metadata:depot:manifest'] = 'The manifest depot sends with each archive: its name, size, sha256, when it was stored, depot\'s task id, and the producer\'s metadata (such as course and user ids).';
