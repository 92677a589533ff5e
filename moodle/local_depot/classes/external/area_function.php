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

namespace local_depot\external;

use core_external\external_api;
use core_external\external_single_structure;
use core_external\external_value;
use local_depot\local\archive_area;

/**
 * What the functions of local_depot share: the course and file area they work in, the check
 * that the caller may, and how a file's location is described.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
abstract class area_function extends external_api {
    /**
     * Parameters naming the area.
     *
     * @return array
     */
    protected static function area_parameters(): array {
        return [
            'courseid' => new external_value(PARAM_INT, 'Course whose file area keeps the archives'),
            'filearea' => new external_value(PARAM_AREA, 'File area of local_depot in that course', VALUE_DEFAULT, 'archive'),
        ];
    }

    /**
     * The area of a course, once the caller is allowed into the course and holds local/depot:manage there.
     *
     * @param int $courseid The course.
     * @param string $filearea The file area.
     * @return archive_area
     */
    protected static function open_area(int $courseid, string $filearea): archive_area {
        global $DB;
        $context = \context_course::instance($courseid);
        self::validate_context($context);
        require_capability('local/depot:manage', $context);
        return new archive_area(get_file_storage(), $DB, $context->id, $filearea);
    }

    /**
     * Description of a file's location, as webservice/pluginfile.php takes it.
     *
     * @param int $required VALUE_REQUIRED or VALUE_OPTIONAL.
     * @return external_single_structure
     */
    protected static function location_returns(int $required = VALUE_REQUIRED): external_single_structure {
        return new external_single_structure([
            'contextid' => new external_value(PARAM_INT, 'Context of the course'),
            'component' => new external_value(PARAM_COMPONENT, 'Component that owns the file'),
            'filearea' => new external_value(PARAM_AREA, 'File area'),
            'itemid' => new external_value(PARAM_INT, 'Item id (0: archives)'),
            'filepath' => new external_value(PARAM_PATH, 'File path'),
            'filename' => new external_value(PARAM_FILE, 'File name'),
            'filesize' => new external_value(PARAM_INT, 'Size in bytes'),
            'timecreated' => new external_value(PARAM_INT, 'When it was filed (Unix time)'),
        ], 'Where the archive is', $required);
    }

    /**
     * A file's location.
     *
     * @param \stored_file $file The file.
     * @return array
     */
    protected static function location(\stored_file $file): array {
        return [
            'contextid' => (int) $file->get_contextid(),
            'component' => $file->get_component(),
            'filearea' => $file->get_filearea(),
            'itemid' => (int) $file->get_itemid(),
            'filepath' => $file->get_filepath(),
            'filename' => $file->get_filename(),
            'filesize' => (int) $file->get_filesize(),
            'timecreated' => (int) $file->get_timecreated(),
        ];
    }
}
