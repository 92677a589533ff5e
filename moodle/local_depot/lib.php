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
 * Callbacks of local_depot.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * Serves an archive (item 0) of a course's area to holders of local/depot:manage in that course.
 *
 * depot reads archives through webservice/pluginfile.php, which authenticates the token and
 * checks that the service allows downloads before it calls this. Manifests (item 1) are not
 * served: depot reads them through local_depot_get_file.
 *
 * @param stdClass $course The course.
 * @param stdClass|null $cm Not used: the files belong to the course.
 * @param context $context The course's context.
 * @param string $filearea The file area.
 * @param array $args Item id, then the path segments and the file name.
 * @param bool $forcedownload Not used: archives are always sent as attachments.
 * @param array $options Options for send_stored_file().
 * @return bool False when there is nothing to serve (the caller answers 404).
 */
function local_depot_pluginfile($course, $cm, $context, $filearea, $args, $forcedownload, array $options = []) {
    if ($context->contextlevel != CONTEXT_COURSE) {
        return false;
    }
    require_login($course, false);
    require_capability('local/depot:manage', $context);

    $itemid = (int) array_shift($args);
    if ($itemid !== \local_depot\local\archive_area::ITEM_ARCHIVE || count($args) < 1) {
        return false;
    }
    $filename = array_pop($args);
    $filepath = $args ? '/' . implode('/', $args) . '/' : '/';
    $file = get_file_storage()->get_file($context->id, 'local_depot', $filearea, $itemid, $filepath, $filename);
    if (!$file || $file->is_directory()) {
        return false;
    }
    \core\session\manager::write_close();
    // No caching anywhere on the way: archives are personal data.
    send_stored_file($file, 0, 0, true, $options);
}
