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
 * Settings of archivingstore_depot, on local_archiving's page for storage drivers.
 *
 * As archivingstore_localdir's settings.php: an admin_settingpage named after the plugin, filled when
 * $ADMIN->fulltree; plus the 'enabled' checkbox every local_archiving sub-plugin has.
 *
 * @package    archivingstore_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($hassiteconfig) {
    $settings = new admin_settingpage('archivingstore_depot_settings', new lang_string('pluginname', 'archivingstore_depot'));

    if ($ADMIN->fulltree) {
        $settings->add(new admin_setting_configcheckbox('archivingstore_depot/enabled',
            new lang_string('enabled', 'archivingstore_depot'),
            new lang_string('enabled_desc', 'archivingstore_depot'), 0));
        $settings->add(new admin_setting_configtext('archivingstore_depot/url',
            new lang_string('url', 'archivingstore_depot'),
            new lang_string('url_desc', 'archivingstore_depot'), '', PARAM_URL));
        $settings->add(new admin_setting_configpasswordunmask('archivingstore_depot/token',
            new lang_string('token', 'archivingstore_depot'),
            new lang_string('token_desc', 'archivingstore_depot'), ''));
        $settings->add(new admin_setting_configtext('archivingstore_depot/siteid',
            new lang_string('siteid', 'archivingstore_depot'),
            new lang_string('siteid_desc', 'archivingstore_depot'), '', PARAM_ALPHANUMEXT));
        $settings->add(new admin_setting_configtext('archivingstore_depot/driver',
            new lang_string('driver', 'archivingstore_depot'),
            new lang_string('driver_desc', 'archivingstore_depot'), '', PARAM_ALPHANUMEXT));
        $settings->add(new admin_setting_configselect('archivingstore_depot/storagetier',
            new lang_string('storagetier', 'archivingstore_depot'),
            new lang_string('storagetier_desc', 'archivingstore_depot'), 'auto', [
                'auto' => new lang_string('storagetier_auto', 'archivingstore_depot'),
                'REMOTE_FAST' => new lang_string('storagetier_fast', 'archivingstore_depot'),
                'REMOTE_SLOW' => new lang_string('storagetier_slow', 'archivingstore_depot'),
            ]));
        $settings->add(new admin_setting_configselect('archivingstore_depot/retention',
            new lang_string('retention', 'archivingstore_depot'),
            new lang_string('retention_desc', 'archivingstore_depot'), 'both', [
                'both' => new lang_string('retention_both', 'archivingstore_depot'),
                'deleteafter' => new lang_string('retention_deleteafter', 'archivingstore_depot'),
                'none' => new lang_string('retention_none', 'archivingstore_depot'),
            ]));
        $settings->add(new admin_setting_configcheckbox('archivingstore_depot/verifytls',
            new lang_string('verifytls', 'archivingstore_depot'),
            new lang_string('verifytls_desc', 'archivingstore_depot'), 1));
        $settings->add(new admin_setting_configduration('archivingstore_depot/connecttimeout',
            new lang_string('connecttimeout', 'archivingstore_depot'),
            new lang_string('connecttimeout_desc', 'archivingstore_depot'), 10, 1));
        $settings->add(new admin_setting_configduration('archivingstore_depot/timeout',
            new lang_string('timeout', 'archivingstore_depot'),
            new lang_string('timeout_desc', 'archivingstore_depot'), 3600, 60));
        $settings->add(new admin_setting_configduration('archivingstore_depot/waittimeout',
            new lang_string('waittimeout', 'archivingstore_depot'),
            new lang_string('waittimeout_desc', 'archivingstore_depot'), 600, 60));
    }
}
