"""XNAT's default site anonymization script, in one place: what ``/xapi/anonymize/default`` serves
and what the site script is until an administrator stores one.

XNAT keeps it as ``META-INF/xnat/defaults/**/id.das`` in xnat-web (``DefaultAnonUtils
.getDefaultScript()``). Its statements are the ones XNAT's documentation and its MizerService tests
show; the comment header follows XNAT's file headers (the file itself is not in the reference index).
"""

XNAT_DEFAULT_SCRIPT = """\
//
// Default XNAT anonymization script
// XNAT http://www.xnat.org
// Copyright (c) 2005-2021, Washington University School of Medicine and Howard Hughes Medical Institute
// All Rights Reserved
//
// Released under the Simplified BSD.
//

version "6.1"
project != "Unassigned" ? (0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
"""
