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
 * STAND-INS, NOT MOODLE: the least of Moodle's API that local_depot's logic touches, so that
 * the logic runs under plain PHPUnit where no Moodle can be installed. Each behaves as the
 * Moodle code named beside it does in the respect the plugin relies on, and no more:
 *  - file_storage refuses a second file at a path (Moodle: the unique index on files.pathnamehash;
 *    create_file_from_storedfile/create_file_from_string turn the failed insert into a
 *    stored_file_creation_exception, lib/filestorage/file_storage.php);
 *  - moodle_database's delegated transaction undoes every change on rollback and rethrows;
 *  - clean_param(PARAM_FILE / PARAM_PATH) as lib/classes/param.php cleans them in Moodle 4.5+.
 * Everything here is for tests/standalone only; Moodle never loads it.
 *
 * @package    local_depot
 * @copyright  2026 depot contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

// phpcs:disable

define('MOODLE_INTERNAL', true);
define('PARAM_FILE', 'file');
define('PARAM_PATH', 'path');

class moodle_exception extends Exception {
    public $errorcode;
    public $module;
    public $debuginfo;
    public function __construct($errorcode, $module = '', $link = '', $a = null, $debuginfo = null) {
        $this->errorcode = $errorcode;
        $this->module = $module;
        $this->debuginfo = $debuginfo;
        parent::__construct("{$module}/{$errorcode}" . ($debuginfo ? ": {$debuginfo}" : ''));
    }
}

class invalid_parameter_exception extends moodle_exception {
    public function __construct($debuginfo = null) {
        parent::__construct('invalidparameter', 'debug', '', null, $debuginfo);
    }
}

class file_exception extends moodle_exception {
    public function __construct($errorcode, $a = null, $debuginfo = null) {
        parent::__construct($errorcode, '', '', $a, $debuginfo);
    }
}

class stored_file_creation_exception extends file_exception {
    public function __construct($contextid, $component, $filearea, $itemid, $filepath, $filename, $debuginfo = null) {
        parent::__construct('storedfilenotcreated', null, $debuginfo);
    }
}

class core_text {
    public static function strlen($text) {
        return mb_strlen($text, 'UTF-8');
    }
}

/** As lib/classes/param.php (Moodle 4.5+) cleans PARAM_FILE and PARAM_PATH. */
function clean_param($param, $type) {
    if ($type === PARAM_FILE) {
        $param = preg_replace('~[[:cntrl:]]|[&<>"`\|\':\\\\/]~u', '', $param);
        return ($param === '.' || $param === '..') ? '' : $param;
    }
    if ($type === PARAM_PATH) {
        $param = str_replace('\\', '/', $param);
        $crumbs = explode('/', $param);
        foreach ($crumbs as $key => $crumb) {
            if (!($crumb === '.' && $key === 0)) {
                $crumbs[$key] = clean_param($crumb, PARAM_FILE);
            }
        }
        return preg_replace('~//+~', '/', implode('/', $crumbs));
    }
    throw new LogicException("stand-in clean_param knows no {$type}");
}

class stored_file {
    private $fs;
    public $record;
    public function __construct(file_storage $fs, stdClass $record) {
        $this->fs = $fs;
        $this->record = $record;
    }
    public function get_id() { return $this->record->id; }
    public function get_contextid() { return $this->record->contextid; }
    public function get_component() { return $this->record->component; }
    public function get_filearea() { return $this->record->filearea; }
    public function get_itemid() { return $this->record->itemid; }
    public function get_filepath() { return $this->record->filepath; }
    public function get_filename() { return $this->record->filename; }
    public function get_filesize() { return strlen($this->fs->content[$this->record->contenthash]); }
    public function get_timecreated() { return $this->record->timecreated; }
    public function get_userid() { return $this->record->userid ?? null; }
    public function is_directory() { return $this->record->filename === '.'; }
    public function get_content() { return $this->fs->content[$this->record->contenthash]; }
    public function get_content_file_handle() {
        $handle = fopen('php://memory', 'w+b');
        fwrite($handle, $this->get_content());
        rewind($handle);
        return $handle;
    }
    public function delete() {
        $this->fs->db->remove_file($this->record->id);
        return true;
    }
}

class moodle_transaction {
    private $db;
    private $snapshot;
    public $done = false;
    public function __construct(moodle_database $db, array $snapshot) {
        $this->db = $db;
        $this->snapshot = $snapshot;
    }
    public function allow_commit() {
        $this->done = true;
        $this->db->commits++;
    }
    public function rollback($e) {
        $this->db->files = $this->snapshot;
        $this->done = true;
        $this->db->rollbacks++;
        throw $e;
    }
}

class moodle_database {
    /** @var stdClass[] The files table, by id. */
    public $files = [];
    public $nextid = 1;
    public $commits = 0;
    public $rollbacks = 0;
    public function start_delegated_transaction() {
        return new moodle_transaction($this, $this->files);
    }
    /** Inserts into files; a taken pathnamehash fails as Moodle's unique index makes it. */
    public function insert_file(stdClass $record) {
        foreach ($this->files as $file) {
            if ($file->pathnamehash === $record->pathnamehash) {
                throw new RuntimeException('duplicate key value violates unique constraint "mdl_file_pat_uix"');
            }
        }
        $record->id = $this->nextid++;
        $this->files[$record->id] = $record;
        return $record->id;
    }
    public function remove_file($id) {
        unset($this->files[$id]);
    }
    public function sql_like($field, $param, $casesensitive = true, $accentsensitive = true) {
        return "{$field} LIKE {$param}";
    }
    public function sql_like_escape($text) {
        return str_replace(['\\', '_', '%'], ['\\\\', '\\_', '\\%'], $text);
    }
    /** Only the select archive_area::list_page() makes, read from its parameters. */
    public function get_records_select($table, $select, array $params, $sort, $fields, $from, $limit) {
        $prefix = str_replace(['\\%', '\\_', '\\\\'], ['%', '_', '\\'], substr($params['prefix'], 0, -1));
        $rows = array_filter($this->files, function($f) use ($params, $prefix) {
            return $f->contextid == $params['contextid'] && $f->component === $params['component']
                && $f->filearea === $params['filearea'] && $f->itemid == $params['itemid'] && $f->filename !== '.'
                && $f->id > $params['after'] && strpos($f->filepath, $prefix) === 0;
        });
        ksort($rows);
        return array_slice($rows, 0, $limit, true);
    }
    /** Only the sum archive_area::used_bytes() asks for. */
    public function get_field_select($table, $return, $select, array $params) {
        $sum = 0;
        foreach ($this->files as $f) {
            if ($f->contextid == $params['contextid'] && $f->component === $params['component']
                    && $f->filearea === $params['filearea']) {
                $sum += $f->filesize;
            }
        }
        return (string) $sum;
    }
}

class file_storage {
    public $db;
    /** @var string[] Content by contenthash (sha1, as Moodle's pool). */
    public $content = [];
    public function __construct(moodle_database $db) {
        $this->db = $db;
    }
    public static function get_pathname_hash($contextid, $component, $filearea, $itemid, $filepath, $filename) {
        return sha1("/{$contextid}/{$component}/{$filearea}/{$itemid}{$filepath}{$filename}");
    }
    private function create(array $record, string $content) {
        $record = (object) $record;
        $record->contenthash = sha1($content);
        $record->filesize = strlen($content);
        $record->timecreated = time();
        $record->pathnamehash = self::get_pathname_hash($record->contextid, $record->component, $record->filearea,
            $record->itemid, $record->filepath, $record->filename);
        $this->content[$record->contenthash] = $content;
        try {
            $this->db->insert_file($record);
        } catch (RuntimeException $e) {
            throw new stored_file_creation_exception($record->contextid, $record->component, $record->filearea,
                $record->itemid, $record->filepath, $record->filename, $e->getMessage());
        }
        return new stored_file($this, $record);
    }
    public function create_file_from_string($record, $content) {
        return $this->create((array) $record, $content);
    }
    public function create_file_from_storedfile($record, $file) {
        return $this->create((array) $record, $file->get_content());
    }
    public function get_file($contextid, $component, $filearea, $itemid, $filepath, $filename) {
        $hash = self::get_pathname_hash($contextid, $component, $filearea, $itemid, $filepath, $filename);
        foreach ($this->db->files as $f) {
            if ($f->pathnamehash === $hash) {
                return new stored_file($this, $f);
            }
        }
        return false;
    }
    public function get_file_instance(stdClass $record) {
        return new stored_file($this, $record);
    }
    public function get_area_files($contextid, $component, $filearea, $itemid, $sort, $includedirs) {
        $out = [];
        foreach ($this->db->files as $f) {
            if ($f->contextid == $contextid && $f->component === $component && $f->filearea === $filearea
                    && $f->itemid == $itemid && ($includedirs || $f->filename !== '.')) {
                $out[$f->id] = new stored_file($this, $f);
            }
        }
        return $out;
    }
    public function delete_area_files($contextid, $component, $filearea, $itemid) {
        foreach ($this->get_area_files($contextid, $component, $filearea, $itemid, 'id', true) as $file) {
            $file->delete();
        }
        return true;
    }
}
