import { mount } from '../popup/mount';

mount('sidepanel');
