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

namespace archivingstore_depot\privacy;

use core_privacy\local\metadata\collection;

/**
 * Privacy declaration of archivingstore_depot: it sends archives and user ids to depot, an external system.
 * It keeps no personal data in Moodle itself (local_archiving's file handles are local_archiving's).
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements \core_privacy\local\metadata\provider {
    /**
     * Declares what goes to depot.
     *
     * @param collection $collection The collection to add to.
     * @return collection
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_external_location_link('depot', [
            'archive' => 'privacy:metadata:depot:archive',
            'siteid' => 'privacy:metadata:depot:siteid',
            'courseid' => 'privacy:metadata:depot:courseid',
            'cmid' => 'privacy:metadata:depot:cmid',
            'jobid' => 'privacy:metadata:depot:jobid',
            'userids' => 'privacy:metadata:depot:userids',
        ], 'privacy:metadata:depot');
        return $collection;
    }
}
